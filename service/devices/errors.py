"""Why a device could not be worked with; ``code`` is what per-device results record."""

from __future__ import annotations

from service.errors import OpsjobsError


class DeviceError(OpsjobsError):
    """A device-level failure: it fails that device, never its neighbours."""

    code = "device_error"


class NoAddress(DeviceError):
    """The device has no primary IPv4 (or an unusable SSH port) in Nautobot."""

    code = "no_address"


class Unreachable(DeviceError):
    code = "unreachable"


class AuthenticationFailed(DeviceError):
    code = "auth_failed"


class HostKeyRejected(DeviceError):
    code = "host_key_rejected"


class DeviceTimeout(DeviceError):
    code = "timeout"


class Disconnected(DeviceError):
    code = "disconnected"


class PromptNotFound(DeviceError):
    code = "prompt_not_found"


class CommandRefused(DeviceError):
    """The device answered a command with its error marker (e.g. ``% Invalid input``)."""

    code = "command_refused"
