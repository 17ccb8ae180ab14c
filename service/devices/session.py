"""An interactive CLI session on one device: prompt detection, paging off, commands.

Network devices are driven through a shell on a PTY, as an operator would: the session
waits for the device's prompt, remembers it exactly, switches paging off with the
platform's command, and then reads each command's output up to the next prompt. A pager
prompt that still appears (a device that ignored the paging command) is answered with a
space and removed from the output, together with the erase sequence that follows it.
"""

from __future__ import annotations

import asyncio
import logging
import re

import asyncssh

from service.devices.errors import DeviceTimeout, Disconnected, PromptNotFound
from service.devices.platforms import PlatformProfile

logger = logging.getLogger(__name__)

#: How much of the end of the output is searched for a prompt or a pager prompt.
_TAIL = 256
#: Terminal size requested for the PTY: wide, so devices do not wrap long lines.
TERM_SIZE = (511, 24)
_ERASED = re.compile(r"[\x08\r]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class DeviceSession:
    """A shell on a device, ready for commands once :meth:`start` returned."""

    def __init__(
        self,
        process: asyncssh.SSHClientProcess[str],
        profile: PlatformProfile,
        *,
        command_timeout: float,
    ) -> None:
        self.profile = profile
        self.prompt = ""
        self._process = process
        self._timeout = command_timeout
        self._more_end = re.compile(f"(?:{profile.more.pattern})\\s*$")

    async def start(self, *, wait: float) -> None:
        """Wait up to ``wait`` seconds for the first prompt, then switch paging off."""
        try:
            async with asyncio.timeout(wait):
                self.prompt = await self._detect_prompt(wait / 2)
        except TimeoutError:
            raise PromptNotFound(f"no {self.profile.name} prompt within {wait:g} s") from None
        for command in self.profile.paging_off:
            await self.run(command)

    async def _detect_prompt(self, nudge_after: float) -> str:
        tail = ""
        nudged = False
        while True:
            try:
                async with asyncio.timeout(None if nudged else nudge_after):
                    data = await self._read()
            except TimeoutError:
                # Some devices print their prompt only after a key press.
                self._process.stdin.write("\n")
                nudged = True
                continue
            tail = (tail + _ANSI.sub("", data))[-_TAIL:]
            match = self.profile.prompt.search(tail)
            if match:
                return match.group(1)

    async def run(self, command: str, *, wait: float | None = None) -> str:
        """Send one command line and return its output (echo and prompt removed).

        ``wait`` overrides the session's command timeout for this command.
        """
        if not self.prompt:
            raise RuntimeError("the session has not been started")
        limit = wait if wait is not None else self._timeout
        self._process.stdin.write(command + "\n")
        try:
            async with asyncio.timeout(limit):
                raw = await self._read_until_prompt()
        except TimeoutError:
            raise DeviceTimeout(f"command {command!r} timed out after {limit:g} s") from None
        return _clean_output(raw, command, self.prompt, self.profile)

    def _at_prompt(self, tail: str) -> bool:
        # A plain string test: a compiled pattern per device prompt would churn re's cache.
        end = tail.rstrip(" ")
        if not end.endswith(self.prompt):
            return False
        before = end[: -len(self.prompt)]
        return not before or before[-1] in "\r\n"

    async def _read_until_prompt(self) -> str:
        chunks: list[str] = []
        tail = ""
        while True:
            data = await self._read()
            chunks.append(data)
            tail = (tail + data)[-_TAIL:]
            if self._more_end.search(tail):
                self._process.stdin.write(" ")
                tail = ""
            elif self._at_prompt(tail):
                return "".join(chunks)

    async def _read(self) -> str:
        try:
            data = await self._process.stdout.read(65536)
        except (asyncssh.Error, OSError) as exc:
            raise Disconnected(f"connection lost: {exc}") from None
        if not data:
            raise Disconnected("the device closed the session")
        return data

    def close(self) -> None:
        """Close the shell channel (the connection is closed by its owner)."""
        self._process.close()


def _clean_output(raw: str, command: str, prompt: str, profile: PlatformProfile) -> str:
    text = profile.more.sub("", _ANSI.sub("", raw)).replace("\r\n", "\n")
    lines = text.split("\n")
    # The trailing prompt, then the echoed command line.
    if lines and lines[-1].strip() == prompt.strip():
        lines.pop()
    if lines and command.strip() and lines[0].strip().endswith(command.strip()):
        lines.pop(0)
    cleaned = [_render(line) for line in lines]
    return "\n".join(cleaned).strip("\n") + "\n" if any(cleaned) else ""


def _render(line: str) -> str:
    """Apply backspaces and carriage returns as a terminal would (pager erase sequences)."""
    if not _ERASED.search(line):
        return line
    cells: list[str] = []
    cursor = 0
    for char in line:
        if char == "\x08":
            cursor = max(cursor - 1, 0)
        elif char == "\r":
            cursor = 0
        else:
            if cursor < len(cells):
                cells[cursor] = char
            else:
                cells.append(char)
            cursor += 1
    return "".join(cells).rstrip()
