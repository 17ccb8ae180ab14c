"""A job type's JSON Schema as form fields, and a submitted form back as parameters.

Scalars become typed inputs (whole numbers, numbers, yes/no, choices, text); anything
nested (lists, objects, unions) is edited as JSON. A field left empty is left out, so the
template's own value applies; the merged result is validated by the job type's Config,
whose errors name the field they belong next to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from starlette.datastructures import FormData

Kind = Literal["integer", "number", "boolean", "choice", "text", "json"]


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: Kind
    required: bool
    description: str | None
    choices: tuple[str, ...]
    value: str
    error: str | None

    @property
    def input_id(self) -> str:
        return f"param-{self.name}"


def _resolve(schema: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/Name``) to its definition."""
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: Mapping[str, Any] = schema.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
        return resolved
    return node


def _kind(schema: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[Kind, tuple[str, ...]]:
    node = _resolve(schema, node)
    options = [item for item in node.get("anyOf", []) if item.get("type") != "null"]
    if len(options) == 1:
        node = _resolve(schema, options[0])
    elif options:
        return "json", ()
    if "enum" in node:
        return "choice", tuple(str(value) for value in node["enum"])
    kinds: dict[str, Kind] = {
        "integer": "integer",
        "number": "number",
        "boolean": "boolean",
        "string": "text",
    }
    return kinds.get(str(node.get("type")), "json"), ()


def _as_text(kind: Kind, value: Any) -> str:
    if value is None:
        return ""
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "json":
        return json.dumps(value)
    return str(value)


def schema_fields(
    schema: Mapping[str, Any],
    values: Mapping[str, Any],
    errors: Mapping[str, str] | None = None,
    *,
    texts: Mapping[str, str] | None = None,
) -> list[FormField]:
    """One field per property, filled from ``values`` (or the texts a person typed)."""
    required = set(schema.get("required", []))
    fields = []
    for name, node in schema.get("properties", {}).items():
        kind, choices = _kind(schema, node)
        value = values.get(name, node.get("default"))
        text = texts[name] if texts is not None and name in texts else _as_text(kind, value)
        fields.append(
            FormField(
                name=name,
                label=str(node.get("title") or name),
                kind=kind,
                required=name in required,
                description=node.get("description"),
                choices=choices,
                value=text,
                error=(errors or {}).get(name),
            )
        )
    return fields


def submitted_texts(schema: Mapping[str, Any], form: FormData) -> dict[str, str]:
    """What was typed into each field (an unticked box reads as ``false``)."""
    texts = {}
    for name, node in schema.get("properties", {}).items():
        kind, _ = _kind(schema, node)
        raw = form.get(f"param.{name}")
        text = raw if isinstance(raw, str) else ""
        texts[name] = ("true" if text else "false") if kind == "boolean" else text.strip()
    return texts


def parse_parameters(
    schema: Mapping[str, Any], texts: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed parameters from the texts, and an error per field that could not be read."""
    parameters: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, node in schema.get("properties", {}).items():
        kind, _ = _kind(schema, node)
        text = texts.get(name, "")
        if text == "" and kind != "boolean":
            continue
        try:
            parameters[name] = _parse(kind, text)
        except ValueError as exc:
            errors[name] = str(exc)
    return parameters, errors


def _parse(kind: Kind, text: str) -> Any:
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            raise ValueError("must be a number") from None
    if kind == "boolean":
        return text == "true"
    if kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg}") from None
    return text


def field_errors(details: Any, *, prefix: str = "parameters") -> dict[str, str]:
    """The messages of an ``InvalidInput``'s details, keyed by the top field they name."""
    errors: dict[str, str] = {}
    for item in details if isinstance(details, list) else []:
        loc = [str(part) for part in item.get("loc", [])]
        if prefix in loc:
            loc = loc[loc.index(prefix) + 1 :]
        if loc:
            where = ".".join(loc[1:])
            message = f"{where}: {item.get('msg')}" if where else str(item.get("msg"))
            errors.setdefault(loc[0], message)
    return errors
