"""Command templates: Jinja2 rendered per device in a sandbox.

Templates are written by API users and rendered in the worker, so they run in Jinja2's
``ImmutableSandboxedEnvironment``: attribute escapes such as ``''.__class__.__mro__``,
calls of unsafe methods and mutation of the context raise a security error instead of
reaching Python internals. Undefined names fail loudly (a command with a silently empty
part is worse than a failed device). The context is the device's Nautobot record as
``nautobot`` (the origin's name) and ``device``, plus ``user_variables``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from service.errors import InvalidInput, OpsjobsError
from service.inventory.device import Device

#: Largest template accepted, and most commands one device may receive.
MAX_TEMPLATE_CHARS = 65_536
MAX_COMMANDS = 1000
#: Work one rendering may do: ``range`` items over all loops, size of a repeated string or
#: list, rendered characters. The sandbox stops attribute escapes, not expensive templates.
MAX_RANGE_ITEMS = 100_000
MAX_REPEAT = 100_000
MAX_EXPONENT = 64
MAX_OUTPUT_CHARS = 1_000_000


class TemplateRefused(OpsjobsError):
    """The template could not be rendered for a device (sandbox, undefined name, error)."""

    code = "template_error"


class CommandSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, also refusing operations whose result explodes in size:
    repetitions, large powers, ``%`` formats with large widths, padding filters, and
    replacements that multiply a text."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for name in ("center", "indent", "format", "replace"):
            self.filters[name] = _bounded_filter(self.filters[name])

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        if operator == "%" and isinstance(left, str):
            _check_format(left)
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(count, int)
                    and len(sequence) * count > MAX_REPEAT
                ):
                    raise SecurityError(f"repetition longer than {MAX_REPEAT} items")
        return super().call_binop(context, operator, left, right)


_WIDE_FORMAT = re.compile(r"%[-+ #0]*(?:\*|\d{5,})|\.(?:\*|\d{5,})")


def _check_format(text: str) -> None:
    if _WIDE_FORMAT.search(text):
        raise SecurityError("a %-format with a width or precision of 10000 or more")


def _bounded_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` refusing results longer than the output cap before building them."""

    def bounded(*args: Any, **kwargs: Any) -> Any:
        texts = [a for a in (*args, *kwargs.values()) if isinstance(a, str)]
        numbers = [a for a in (*args, *kwargs.values()) if isinstance(a, int)]
        largest = max((len(text) for text in texts), default=0)
        # Padding adds at most the width; a replacement multiplies by the new text's length.
        if any(n > MAX_OUTPUT_CHARS for n in numbers) or largest * largest > MAX_OUTPUT_CHARS**2:
            raise SecurityError("a filter argument would build too long a text")
        if texts and "%" in texts[0]:
            _check_format(texts[0])
        if function.__name__ == "do_replace" and len(texts) >= 3:
            growth = texts[-3].count(texts[-2]) * max(0, len(texts[-1]) - len(texts[-2]))
            if growth > MAX_OUTPUT_CHARS:
                raise SecurityError("a replacement would build too long a text")
        return function(*args, **kwargs)

    for attribute in ("jinja_pass_arg",):
        if hasattr(function, attribute):
            setattr(bounded, attribute, getattr(function, attribute))
    bounded.__name__ = function.__name__
    return bounded


class _RangeBudget:
    """``range`` for one rendering: every loop over it draws from one shared budget."""

    def __init__(self) -> None:
        self.left = MAX_RANGE_ITEMS

    def range(self, *args: int) -> Iterator[int]:
        for value in range(*args):
            self.left -= 1
            if self.left < 0:
                raise SecurityError(f"loops over range() went past {MAX_RANGE_ITEMS} items")
            yield value


def sandbox() -> CommandSandbox:
    """The environment every command template is compiled in."""
    return CommandSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


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
    return {
        "nautobot": record,
        "device": record,
        "user_variables": dict(user_variables),
        "range": _RangeBudget().range,
    }


def render_commands(
    template: Template, device: Device, user_variables: Mapping[str, Any]
) -> list[str]:
    """The commands for ``device``: the rendered text's non-empty lines, stripped."""
    try:
        text = _bounded_render(template, template_context(device, user_variables))
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


def _bounded_render(template: Template, context: dict[str, Any]) -> str:
    parts: list[str] = []
    size = 0
    for part in template.generate(context):
        size += len(part)
        if size > MAX_OUTPUT_CHARS:
            raise SecurityError(f"the rendered text is longer than {MAX_OUTPUT_CHARS} characters")
        parts.append(part)
    return "".join(parts)
