"""Repository paths: templates such as ``{location.name}/{device.name}.cfg``, made safe.

A template is checked when it is saved (:func:`validate_path_template`): it must be
relative, must not climb out of the repository (``..``) or into ``.git``, and its
placeholders must name device fields. When a file is written the placeholders are filled
from the device (:func:`render_device_path`); a value cannot add directories (``/`` in a
name becomes ``_``), and the result is checked again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from service.errors import InvalidInput
from service.inventory.device import Device

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*$")
_UNSAFE_IN_VALUE = re.compile(r"[/\\\x00-\x1f\x7f]")
_FORBIDDEN_CHARS = re.compile(r"[\\\x00-\x1f\x7f]")
MAX_PATH_LENGTH = 1024

#: What a placeholder may start with: the device context (see ``Device.context``).
PLACEHOLDER_ROOTS = frozenset(
    {
        "device",
        "device_name",
        "id",
        "name",
        "serial",
        "primary_ip4",
        "platform",
        "location",
        "role",
        "status",
        "device_type",
        "manufacturer",
        "custom_fields",
        "_custom_field_data",
    }
)

DEFAULT_RUNNING_PATH = "{location.name}/{device.name}.running-config"
DEFAULT_STARTUP_PATH = "{location.name}/{device.name}.startup-config"


class InvalidPath(InvalidInput, ValueError):
    """A path or path template that could escape the repository or names no field.

    It is also a ``ValueError`` so pydantic validators report it as a validation error.
    """

    code = "invalid_path"


def safe_relative_path(path: str) -> str:
    """``path`` if it stays inside a repository's work tree; raises :class:`InvalidPath`."""
    if not path:
        raise InvalidPath("the path is empty")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidPath(f"the path is longer than {MAX_PATH_LENGTH} characters")
    if path.startswith("/"):
        raise InvalidPath(f"{path!r} is absolute; paths are relative to the repository")
    if _FORBIDDEN_CHARS.search(path):
        raise InvalidPath(f"{path!r} contains a backslash or a control character")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPath(f"{path!r} has an empty, '.' or '..' segment")
        if segment.lower() == ".git":
            raise InvalidPath(f"{path!r} points into .git")
    return path


def validate_path_template(template: str) -> str:
    """Check a path template when it is saved; returns it unchanged or raises."""
    names = _PLACEHOLDER.findall(template)
    skeleton = _PLACEHOLDER.sub("x", template)
    if "{" in skeleton or "}" in skeleton:
        raise InvalidPath(f"{template!r} has an unbalanced brace")
    if not names:
        raise InvalidPath(f"{template!r} has no placeholder: every device would share one file")
    for name in names:
        if not _FIELD.match(name) or name.split(".", 1)[0] not in PLACEHOLDER_ROOTS:
            raise InvalidPath(f"{template!r}: unknown placeholder {{{name}}}")
    safe_relative_path(skeleton)
    return template


def render_path_template(template: str, context: Mapping[str, Any]) -> str:
    """Fill ``template`` from ``context``; a missing value raises :class:`InvalidPath`."""

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        value: Any = context
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None or value == "" or isinstance(value, Mapping | list):
            raise InvalidPath(f"placeholder {{{name}}} has no value")
        text = _UNSAFE_IN_VALUE.sub("_", str(value)).strip()
        if text in ("", ".", ".."):
            raise InvalidPath(f"placeholder {{{name}}} has the unusable value {text!r}")
        return text

    return safe_relative_path(_PLACEHOLDER.sub(value_of, validate_path_template(template)))


def device_path_context(device: Device) -> dict[str, Any]:
    """The values a path template can use for ``device``.

    Nautobot-shaped keys (``location.name``, ``platform.network_driver``,
    ``custom_fields.<key>``), ``device.<same>`` for all of them, and ``device_name``.
    """
    context = device.context()
    return {**context, "device": context, "device_name": device.name}


def render_device_path(template: str, device: Device) -> str:
    """The repository path for ``device`` under ``template``."""
    return render_path_template(template, device_path_context(device))
