"""Command templates: Jinja2 rendered per device in a sandbox.

Templates are written by API users and rendered in the worker, so they run in Jinja2's
``ImmutableSandboxedEnvironment``: attribute escapes such as ``''.__class__.__mro__``,
calls of unsafe methods and mutation of the context raise a security error instead of
reaching Python internals. Undefined names fail loudly (a command with a silently empty
part is worse than a failed device). The context is the device's Nautobot record as
``nautobot`` (the origin's name) and ``device``, plus ``user_variables``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from service.errors import InvalidInput, OpsjobsError
from service.inventory.device import Device

#: Largest template accepted, and most commands one device may receive.
MAX_TEMPLATE_CHARS = 65_536
MAX_COMMANDS = 1000


class TemplateRefused(OpsjobsError):
    """The template could not be rendered for a device (sandbox, undefined name, error)."""

    code = "template_error"


def sandbox() -> ImmutableSandboxedEnvironment:
    """The environment every command template is compiled in."""
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


def validate_template(content: str) -> str:
    """Check a template when it is saved; a syntax error is a 422 naming the line."""
    if len(content) > MAX_TEMPLATE_CHARS:
        raise InvalidInput(
            f"the template is longer than {MAX_TEMPLATE_CHARS} characters",
            details=[{"loc": ["body", "content"], "msg": "too long"}],
        )
    try:
        sandbox().parse(content)
    except TemplateSyntaxError as exc:
        raise InvalidInput(
            f"template syntax error on line {exc.lineno}: {exc.message}",
            details=[{"loc": ["body", "content"], "msg": exc.message, "line": exc.lineno}],
        ) from None
    if not content.strip():
        raise InvalidInput(
            "the template is empty", details=[{"loc": ["body", "content"], "msg": "empty"}]
        )
    return content


def compile_template(content: str) -> Template:
    """Compile once per run; raises :class:`TemplateRefused` for a broken template."""
    try:
        return sandbox().from_string(content)
    except TemplateSyntaxError as exc:
        raise TemplateRefused(
            f"template syntax error on line {exc.lineno}: {exc.message}"
        ) from None


def template_context(device: Device, user_variables: Mapping[str, Any]) -> dict[str, Any]:
    """What a template sees for ``device``."""
    record = device.context()
    return {"nautobot": record, "device": record, "user_variables": dict(user_variables)}


def render_commands(
    template: Template, device: Device, user_variables: Mapping[str, Any]
) -> list[str]:
    """The commands for ``device``: the rendered text's non-empty lines, stripped."""
    try:
        text = template.render(template_context(device, user_variables))
    except SecurityError as exc:
        raise TemplateRefused(f"template refused by the sandbox: {exc}") from None
    except TemplateError as exc:
        raise TemplateRefused(f"template could not be rendered: {exc}") from None
    except Exception as exc:
        # Filters and tests run user-chosen operations (e.g. int("x")): the device fails.
        raise TemplateRefused(
            f"template could not be rendered: {type(exc).__name__}: {exc}"
        ) from None
    commands = [line.strip() for line in text.splitlines() if line.strip()]
    if not commands:
        raise TemplateRefused("the template rendered no commands for this device")
    if len(commands) > MAX_COMMANDS:
        raise TemplateRefused(
            f"the template rendered {len(commands)} commands; at most {MAX_COMMANDS} allowed"
        )
    return commands
