"""A git repository of text files written by jobs (device configurations first).

:meth:`GitConfigStore.write_files` does pull → write → commit → push while holding the
repository's lock (:class:`~service.gitstore.locks.RepositoryLocks`). Only files whose
content differs from the last committed version are written, staged and committed, with
the caller's message; writing identical content again makes no commit. Each file comes
back ``changed``, ``unchanged`` or ``failed`` with a unified diff against its previous
version. Repository failures (clone, fetch, commit, push) do not raise: they come back
as the outcome's ``error`` with the affected files ``failed`` and their diffs kept, so a
run can record what it found even when it could not store it.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from service.errors import NotFound
from service.gitstore.git import GitError, GitIdentity, run_git
from service.gitstore.locks import RepositoryBusy, RepositoryLocks
from service.gitstore.paths import InvalidPath, safe_relative_path

logger = logging.getLogger(__name__)

FileStatus = Literal["changed", "unchanged", "failed"]
_COMMIT = re.compile(r"^[0-9a-f]{4,64}$")


@dataclass(frozen=True)
class RepositorySpec:
    """Where a repository lives: a local checkout and, optionally, its remote."""

    key: str
    path: Path
    url: str | None = None
    branch: str = "main"
    identity: GitIdentity = field(default_factory=GitIdentity)
    #: Extra git environment for the remote (authentication); may hold secrets.
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class FileWrite:
    """One file to store; ``key`` is the caller's name for it (e.g. the device id)."""

    key: str
    path: str
    content: str


@dataclass(frozen=True)
class FileResult:
    key: str
    path: str
    status: FileStatus
    diff: str = ""
    added: int = 0
    removed: int = 0
    created: bool = False
    error: str | None = None


@dataclass(frozen=True)
class WriteOutcome:
    files: tuple[FileResult, ...]
    commit: str | None = None
    pushed: bool = False
    warnings: tuple[str, ...] = ()
    error: str | None = None

    def by_status(self, status: FileStatus) -> list[FileResult]:
        return [result for result in self.files if result.status == status]


@dataclass(frozen=True)
class FileVersion:
    commit: str
    committed_at: datetime
    author: str
    message: str


class GitConfigStore:
    """Writes, lists and compares file versions in one repository."""

    def __init__(
        self,
        spec: RepositorySpec,
        locks: RepositoryLocks,
        *,
        git_timeout: float = 120.0,
        max_diff_lines: int = 400,
    ) -> None:
        self.spec = spec
        self._locks = locks
        self._timeout = git_timeout
        self._max_diff_lines = max_diff_lines

    async def _git(
        self, *args: str, stdin: bytes | None = None, check: bool = True
    ) -> tuple[int, bytes, str]:
        return await run_git(
            args,
            cwd=self.spec.path,
            identity=self.spec.identity,
            extra_env=self.spec.environment,
            stdin=stdin,
            time_limit=self._timeout,
            check=check,
        )

    @property
    def _tip(self) -> str:
        # The committed state jobs read: the remote branch when there is a remote.
        return f"refs/remotes/origin/{self.spec.branch}" if self.spec.url else "HEAD"

    async def write_files(self, files: Sequence[FileWrite], *, message: str) -> WriteOutcome:
        """Store ``files`` in one commit named by ``message`` (no commit if none changed)."""
        valid, results = _check_paths(files)
        try:
            async with self._locks.hold(self.spec.key):
                return await self._write_locked(files, valid, results, message)
        except (GitError, RepositoryBusy) as exc:
            logger.warning("git write to %s failed: %s", self.spec.key, exc.message)
            failed = {w.key: FileResult(w.key, w.path, "failed", error=exc.message) for w in valid}
            return WriteOutcome(_ordered(files, {**results, **failed}), error=exc.message)

    async def _write_locked(
        self,
        files: Sequence[FileWrite],
        valid: list[FileWrite],
        results: dict[str, FileResult],
        message: str,
    ) -> WriteOutcome:
        warnings = await self._prepare()
        previous = await self._committed_contents([w.path for w in valid])
        diffs = await asyncio.to_thread(_compare, valid, previous, self._max_diff_lines)
        results.update(diffs)
        changed = [w for w in valid if diffs[w.key].status == "changed"]
        unwritable = await asyncio.to_thread(_write_contents, self.spec.path, changed)
        for key, error in unwritable.items():
            results[key] = replace(results[key], status="failed", error=error)
        changed = [w for w in changed if w.key not in unwritable]
        if not changed:
            return WriteOutcome(_ordered(files, results), warnings=tuple(warnings))
        paths = b"\0".join(w.path.encode() for w in changed) + b"\0"
        try:
            await self._git("add", "--pathspec-from-file=-", "--pathspec-file-nul", stdin=paths)
            await self._git(
                "commit",
                "-q",
                "--no-verify",
                "-m",
                message,
                "--pathspec-from-file=-",
                "--pathspec-file-nul",
                stdin=paths,
            )
            _, out, _ = await self._git("rev-parse", "HEAD")
            commit = out.decode().strip()
            if self.spec.url:
                await self._git("push", "-q", "origin", f"HEAD:refs/heads/{self.spec.branch}")
                await self._git("update-ref", self._tip, commit)
        except GitError as exc:
            await self._roll_back()
            for write in changed:
                results[write.key] = replace(results[write.key], status="failed", error=exc.message)
            return WriteOutcome(
                _ordered(files, results), warnings=tuple(warnings), error=exc.message
            )
        logger.info("committed %s file(s) to %s", len(changed), self.spec.key)
        return WriteOutcome(
            _ordered(files, results),
            commit=commit,
            pushed=bool(self.spec.url),
            warnings=tuple(warnings),
        )

    async def _prepare(self) -> list[str]:
        """Make the checkout exist, sit on the branch, and match the remote's tip."""
        path, branch = self.spec.path, self.spec.branch
        if not (path / ".git").exists():
            await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
            await self._git("init", "-q", "-b", branch)
            if self.spec.url:
                await self._git("remote", "add", "origin", self.spec.url)
        elif self.spec.url:
            await self._git("remote", "set-url", "origin", self.spec.url)
        _, head, _ = await self._git("symbolic-ref", "--short", "HEAD")
        if head.decode().strip() != branch:
            raise GitError(f"the checkout is on {head.decode().strip()!r}, not on {branch!r}")
        if self.spec.url:
            await self._sync_with_remote()
        _, status, _ = await self._git("status", "--porcelain", "--untracked-files=no")
        dirty = len(status.splitlines())
        return [f"the checkout has {dirty} uncommitted change(s)"] if dirty else []

    async def _sync_with_remote(self) -> None:
        branch = self.spec.branch
        _, heads, _ = await self._git("ls-remote", "--heads", "origin", f"refs/heads/{branch}")
        if not heads.strip():
            return  # an empty remote: the first push creates the branch
        await self._git("fetch", "-q", "origin", f"+refs/heads/{branch}:{self._tip}")
        born, _, _ = await self._git("rev-parse", "-q", "--verify", "HEAD", check=False)
        # --keep moves the branch to the remote's tip but refuses to overwrite local edits.
        await self._git("reset", "-q", "--keep" if born == 0 else "--hard", self._tip)

    async def _roll_back(self) -> None:
        # Undo an unpushed commit so the next write starts from the remote's state.
        try:
            if self.spec.url:
                code, _, _ = await self._git("rev-parse", "-q", "--verify", self._tip, check=False)
                if code == 0:
                    await self._git("reset", "-q", "--keep", self._tip)
                else:
                    await self._git("update-ref", "-d", f"refs/heads/{self.spec.branch}")
        except GitError as exc:
            logger.warning("could not roll back %s: %s", self.spec.key, exc.message)

    async def _committed_contents(self, paths: Iterable[str]) -> dict[str, str | None]:
        """The last committed content of each path (``None`` if it has none)."""
        wanted = list(dict.fromkeys(paths))
        found: dict[str, str | None] = dict.fromkeys(wanted)
        code, _, _ = await self._git("rev-parse", "-q", "--verify", "HEAD", check=False)
        if code != 0 or not wanted:
            return found
        requests = "".join(f"HEAD:{path}\n" for path in wanted).encode()
        _, out, _ = await self._git("cat-file", "--batch", stdin=requests)
        position = 0
        for path in wanted:
            end = out.index(b"\n", position)
            header = out[position:end].split()
            position = end + 1
            if header[-1] == b"missing":
                continue
            if header[1] != b"blob":
                # A directory (tree) at that path: no file content to compare with.
                position += int(header[2]) + 1
                continue
            size = int(header[2])
            found[path] = out[position : position + size].decode("utf-8", "replace")
            position += size + 1
        return found

    async def _refresh(self) -> None:
        if not (self.spec.path / ".git").exists() or self.spec.url:
            async with self._locks.hold(self.spec.key):
                await self._prepare()

    async def history(self, path: str, *, limit: int = 50) -> list[FileVersion]:
        """Commits that changed ``path``, newest first (after syncing with the remote)."""
        safe_relative_path(path)
        await self._refresh()
        code, _, _ = await self._git("rev-parse", "-q", "--verify", self._tip, check=False)
        if code != 0:
            return []
        _, out, _ = await self._git(
            "log", f"-n{limit}", "--format=%H%x1f%aI%x1f%an%x1f%s", self._tip, "--", path
        )
        versions = []
        for line in out.decode().splitlines():
            commit, when, author, subject = line.split("\x1f", 3)
            versions.append(FileVersion(commit, datetime.fromisoformat(when), author, subject))
        return versions

    async def read_version(self, path: str, commit: str) -> str:
        """``path`` as it was at ``commit``; raises ``NotFound``."""
        safe_relative_path(path)
        _check_commit(commit)
        code, out, _ = await self._git("cat-file", "blob", f"{commit}:{path}", check=False)
        if code != 0:
            raise NotFound(f"{path} has no version at {commit}")
        return out.decode("utf-8", "replace")

    async def diff_versions(self, path: str, old: str, new: str) -> str:
        """The unified diff of ``path`` from commit ``old`` to commit ``new``."""
        safe_relative_path(path)
        _check_commit(old)
        _check_commit(new)
        code, out, err = await self._git(
            "diff", "--no-color", "--no-ext-diff", old, new, "--", path, check=False
        )
        if code != 0:
            raise NotFound(f"cannot compare {path} between {old} and {new}: {err}")
        return out.decode("utf-8", "replace")


def _check_commit(commit: str) -> None:
    if not _COMMIT.match(commit):
        raise NotFound(f"{commit!r} is not a commit id")


def _check_paths(files: Sequence[FileWrite]) -> tuple[list[FileWrite], dict[str, FileResult]]:
    """Split writes into usable ones and failures (unsafe path, duplicate key or path)."""
    failed: dict[str, FileResult] = {}
    counts: dict[str, int] = {}
    for write in files:
        counts[write.path] = counts.get(write.path, 0) + 1
    seen_keys: set[str] = set()
    valid: list[FileWrite] = []
    for write in files:
        error = None
        try:
            safe_relative_path(write.path)
        except InvalidPath as exc:
            error = exc.message
        if error is None and counts[write.path] > 1:
            error = f"{write.path} is the target of {counts[write.path]} writes in one batch"
        if write.key in seen_keys:
            raise ValueError(f"duplicate file key {write.key!r}")
        seen_keys.add(write.key)
        if error is None:
            valid.append(write)
        else:
            failed[write.key] = FileResult(write.key, write.path, "failed", error=error)
    return valid, failed


def _ordered(files: Sequence[FileWrite], results: dict[str, FileResult]) -> tuple[FileResult, ...]:
    return tuple(results[w.key] for w in files if w.key in results)


def _compare(
    writes: Sequence[FileWrite], previous: dict[str, str | None], max_lines: int
) -> dict[str, FileResult]:
    results: dict[str, FileResult] = {}
    for write in writes:
        before = previous.get(write.path)
        if before == write.content:
            results[write.key] = FileResult(write.key, write.path, "unchanged")
            continue
        lines = list(
            difflib.unified_diff(
                (before or "").splitlines(keepends=True),
                write.content.splitlines(keepends=True),
                fromfile="/dev/null" if before is None else f"a/{write.path}",
                tofile=f"b/{write.path}",
            )
        )
        added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
        removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
        shown = lines[:max_lines]
        if len(lines) > max_lines:
            shown.append(f"... {len(lines) - max_lines} more diff line(s)\n")
        results[write.key] = FileResult(
            write.key,
            write.path,
            "changed",
            diff="".join(line if line.endswith("\n") else line + "\n" for line in shown),
            added=added,
            removed=removed,
            created=before is None,
        )
    return results


def _write_contents(root: Path, writes: Sequence[FileWrite]) -> dict[str, str]:
    """Write each file; returns the errors of those that could not be written.

    A path that resolves outside the work tree (through a symlink committed to the
    repository) is refused, as is anything the filesystem refuses.
    """
    base = root.resolve()
    errors: dict[str, str] = {}
    for write in writes:
        target = root / write.path
        try:
            if target.is_symlink() or not target.parent.resolve().is_relative_to(base):
                errors[write.key] = f"{write.path} leads outside the repository"
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(write.content, encoding="utf-8")
        except OSError as exc:
            errors[write.key] = f"cannot write {write.path}: {exc.strerror or exc}"
    return errors
