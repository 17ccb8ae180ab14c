"""A small GraphQL reader for the Nautobot simulator: one query operation with fields,
aliases, arguments (literals or variables) and nested selections — the subset Nautobot
clients send. Fragments, directives and mutations are answered with an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class GraphQLSyntaxError(ValueError):
    """The query text is not in the supported subset."""


@dataclass(frozen=True)
class FieldNode:
    """A selected field with its evaluated arguments."""

    name: str
    alias: str | None
    arguments: dict[str, Any]
    selections: tuple[FieldNode, ...] | None

    @property
    def key(self) -> str:
        """The key this field gets in the answer."""
        return self.alias or self.name


_TOKEN = re.compile(
    r"""
    (?P<skip>[\s,]+|\#[^\n]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[{}()\[\]:$!=@])
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise GraphQLSyntaxError(f"Syntax Error: unexpected character at {position}")
        kind = match.lastgroup or ""
        if kind != "skip":
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, variables: Mapping[str, Any]) -> None:
        self._tokens = _tokenize(text)
        self._index = 0
        self._variables = variables

    def _peek(self) -> tuple[str, str]:
        if self._index < len(self._tokens):
            return self._tokens[self._index]
        return ("eof", "")

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        if token[0] == "eof":
            raise GraphQLSyntaxError("Syntax Error: unexpected end of query")
        self._index += 1
        return token

    def _expect(self, value: str) -> None:
        kind, text = self._next()
        if text != value or kind not in ("punct", "name"):
            raise GraphQLSyntaxError(f"Syntax Error: expected {value!r}, found {text!r}")

    def _name(self) -> str:
        kind, text = self._next()
        if kind != "name":
            raise GraphQLSyntaxError(f"Syntax Error: expected a name, found {text!r}")
        return text

    def document(self) -> tuple[FieldNode, ...]:
        kind, text = self._peek()
        if kind == "name":
            if text != "query":
                raise GraphQLSyntaxError(f"only query operations are supported, not {text!r}")
            self._next()
            if self._peek()[0] == "name":
                self._next()
            if self._peek()[1] == "(":
                self._variable_definitions()
        selections = self._selection_set()
        if self._peek()[0] != "eof":
            raise GraphQLSyntaxError("only one operation per document is supported")
        return selections

    def _variable_definitions(self) -> None:
        self._expect("(")
        while self._peek()[1] != ")":
            self._expect("$")
            self._name()
            self._expect(":")
            self._type()
            if self._peek()[1] == "=":
                raise GraphQLSyntaxError("variable defaults are not supported")
        self._expect(")")

    def _type(self) -> None:
        if self._peek()[1] == "[":
            self._next()
            self._type()
            self._expect("]")
        else:
            self._name()
        if self._peek()[1] == "!":
            self._next()

    def _selection_set(self) -> tuple[FieldNode, ...]:
        self._expect("{")
        fields: list[FieldNode] = []
        while self._peek()[1] != "}":
            fields.append(self._field())
        self._next()
        if not fields:
            raise GraphQLSyntaxError("Syntax Error: empty selection set")
        return tuple(fields)

    def _field(self) -> FieldNode:
        kind, text = self._peek()
        if kind == "spread" or text == "@":
            raise GraphQLSyntaxError("fragments and directives are not supported")
        name = self._name()
        alias = None
        if self._peek()[1] == ":":
            self._next()
            alias, name = name, self._name()
        arguments: dict[str, Any] = {}
        if self._peek()[1] == "(":
            self._next()
            while self._peek()[1] != ")":
                argument = self._name()
                self._expect(":")
                arguments[argument] = self._value()
            self._next()
        selections = self._selection_set() if self._peek()[1] == "{" else None
        return FieldNode(name, alias, arguments, selections)

    def _value(self) -> Any:
        kind, text = self._next()
        if text == "$" and kind == "punct":
            variable = self._name()
            if variable not in self._variables:
                raise GraphQLSyntaxError(f'Variable "${variable}" is not provided')
            return self._variables[variable]
        if kind == "string":
            return json.loads(text)
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(text, text)
        if text == "[":
            items = []
            while self._peek()[1] != "]":
                items.append(self._value())
            self._next()
            return items
        if text == "{":
            fields: dict[str, Any] = {}
            while self._peek()[1] != "}":
                key = self._name()
                self._expect(":")
                fields[key] = self._value()
            self._next()
            return fields
        raise GraphQLSyntaxError(f"Syntax Error: unexpected {text!r}")


def parse_query(text: str, variables: Mapping[str, Any] | None = None) -> tuple[FieldNode, ...]:
    """Parse ``text`` into its top-level fields, substituting ``variables``."""
    return _Parser(text, variables or {}).document()


def project(value: Any, selections: tuple[FieldNode, ...] | None, type_name: str) -> Any:
    """Shape ``value`` (dicts and lists of plain data) by a selection set."""
    if value is None or selections is None:
        return value
    if isinstance(value, list):
        return [project(item, selections, type_name) for item in value]
    answer: dict[str, Any] = {}
    for field in selections:
        if field.name == "__typename":
            answer[field.key] = type_name
            continue
        if field.name not in value:
            raise GraphQLSyntaxError(f'Cannot query field "{field.name}" on type "{type_name}".')
        child = value[field.name]
        answer[field.key] = project(child, field.selections, field.name)
    return answer
