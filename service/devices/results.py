"""Per-device results of SSH work; a failed device keeps whatever it produced before."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CommandOutput:
    command: str
    output: str


@dataclass(frozen=True, slots=True)
class CommandsResult:
    """What ``run_commands`` got from one device.

    ``outputs`` holds every command that completed, also when a later one failed;
    ``error``/``error_code`` say why the device failed (``None`` when it did not).
    """

    device_id: str
    device_name: str
    host: str | None
    port: int | None
    platform: str | None
    outputs: tuple[CommandOutput, ...] = ()
    error: str | None = None
    error_code: str | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ConfigResult:
    """What ``fetch_configs`` got from one device.

    ``running`` and ``startup`` are cleaned of volatile lines; ``startup`` is ``None`` on
    platforms without a startup configuration and ``""`` when the device has none saved.
    """

    device_id: str
    device_name: str
    host: str | None
    port: int | None
    platform: str | None
    running: str | None = None
    startup: str | None = None
    error: str | None = None
    error_code: str | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None
