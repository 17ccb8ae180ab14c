"""The saved-inventory condition tree (version 2), validated at the API boundary.

Shape (the origin's grammar): a root ``{"type": "root", "internalLogic": "AND"|"OR",
"items": [...]}`` whose items are conditions ``{"id"?, "field", "operator", "value"}`` or
groups ``{"id"?, "type": "group", "logic": "AND"|"OR"|"NOT", "internalLogic":
"AND"|"OR", "items": [...]}``. Anything outside the grammar — an unknown field or
operator, ``contains`` on a field Nautobot can only match exactly, an empty value, an
empty group — is rejected when the inventory is saved, with the path of the item
(``root.items[2].operator``), instead of being silently reinterpreted at run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.errors import InvalidInput

Operator = Literal["equals", "not_equals", "contains", "not_contains"]
Logic = Literal["AND", "OR"]
GroupLogic = Literal["AND", "OR", "NOT"]

#: Fields Nautobot filters by exact value (by name, model or id).
EXACT_FIELDS = frozenset(
    {"name", "location", "role", "status", "tag", "device_type", "manufacturer", "platform"}
)
#: Fields whose ``contains`` has a real Nautobot filter (case-insensitive substring).
CONTAINS_FIELDS = frozenset({"name", "location"})
BOOLEAN_FIELDS = frozenset({"has_primary"})
CUSTOM_FIELD_PREFIX = "cf_"
# The custom-field key becomes a GraphQL argument name (cf_<key>), so it must be a GraphQL
# name and nothing else can reach the query text.
_CUSTOM_FIELD = re.compile(r"^cf_[A-Za-z_][A-Za-z0-9_]*$")
_BOOLEAN_VALUES = {"true": True, "false": False}

#: Limits that keep one saved inventory from turning into hundreds of Nautobot queries.
MAX_DEPTH = 8
MAX_CONDITIONS = 200


def is_custom_field(field: str) -> bool:
    """Whether ``field`` names a custom field (``cf_<key>``)."""
    return field.startswith(CUSTOM_FIELD_PREFIX)


def parse_boolean(value: str) -> bool:
    """The boolean a ``has_primary`` value stands for (``"True"``/``"false"``…)."""
    return _BOOLEAN_VALUES[value.strip().lower()]


class Condition(BaseModel):
    """One ``{field, operator, value}`` test."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    field: str
    operator: Operator
    value: str

    @field_validator("field")
    @classmethod
    def _known_field(cls, field: str) -> str:
        if field in EXACT_FIELDS or field in BOOLEAN_FIELDS or _CUSTOM_FIELD.match(field):
            return field
        known = ", ".join(sorted(EXACT_FIELDS | BOOLEAN_FIELDS))
        raise ValueError(f"unknown field {field!r}; expected one of {known} or cf_<key>")

    @field_validator("operator")
    @classmethod
    def _operator_fits_field(cls, operator: str, info: ValidationInfo) -> str:
        field = info.data.get("field")
        if field is None or operator in ("equals", "not_equals"):
            return operator
        if field in CONTAINS_FIELDS or is_custom_field(field):
            return operator
        raise ValueError(
            f"operator {operator!r} is not supported for field {field!r}; use equals or not_equals"
        )

    @field_validator("value")
    @classmethod
    def _meaningful_value(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError("value must not be empty")
        if info.data.get("field") in BOOLEAN_FIELDS and value.strip().lower() not in (
            _BOOLEAN_VALUES
        ):
            raise ValueError(f"value {value!r} must be 'True' or 'False'")
        return value

    @property
    def negated(self) -> bool:
        """Whether the operator selects the complement of its positive match."""
        return self.operator in ("not_equals", "not_contains")

    def describe(self) -> str:
        """A short human description, used in error messages."""
        return f"{self.field} {self.operator} {self.value!r}"


def _item_kind(item: Any) -> str | None:
    if isinstance(item, Group):
        return "group"
    if isinstance(item, Condition):
        return "condition"
    if isinstance(item, dict):
        kind = item.get("type")
        if kind is None:
            return "condition"
        return "group" if kind == "group" else None
    return "condition"


class Group(BaseModel):
    """A parenthesised sub-expression joined to its predecessor by ``logic``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str | None = None
    type: Literal["group"] = "group"
    logic: GroupLogic = "AND"
    internal_logic: Logic = Field(default="AND", alias="internalLogic")
    items: list[Item] = Field(min_length=1)


Item = Annotated[
    Annotated[Condition, Tag("condition")] | Annotated[Group, Tag("group")],
    Discriminator(
        _item_kind,
        custom_error_type="invalid_item",
        custom_error_message=(
            "item must be a condition {field, operator, value} or a group with type 'group'"
        ),
    ),
]


Group.model_rebuild()


class InventoryTree(BaseModel):
    """The root of a version-2 condition tree."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["root"] = "root"
    internal_logic: Logic = Field(default="AND", alias="internalLogic")
    items: list[Item] = Field(min_length=1)

    @model_validator(mode="after")
    def _bounded(self) -> InventoryTree:
        depth = _depth(self.items)
        if depth > MAX_DEPTH:
            raise ValueError(f"groups are nested {depth} deep; at most {MAX_DEPTH} allowed")
        count = sum(1 for _ in iter_conditions(self.items))
        if count > MAX_CONDITIONS:
            raise ValueError(f"{count} conditions; at most {MAX_CONDITIONS} allowed")
        return self

    def to_saved(self) -> list[dict[str, Any]]:
        """The stored form: ``[{"version": 2, "tree": ...}]`` with the origin's key names."""
        return [{"version": 2, "tree": self.model_dump(by_alias=True, exclude_none=True)}]


def iter_conditions(items: Sequence[Condition | Group]) -> Iterator[Condition]:
    """Every condition of ``items``, depth first."""
    for item in items:
        if isinstance(item, Condition):
            yield item
        else:
            yield from iter_conditions(item.items)


def _depth(items: Sequence[Condition | Group]) -> int:
    groups = [item for item in items if isinstance(item, Group)]
    return 1 + max((_depth(group.items) for group in groups), default=0)


def item_location(loc: Sequence[int | str]) -> list[int | str]:
    """A pydantic error location as the user wrote it: ``["root", "items", 2, "operator"]``.

    The union tags (``condition``/``group``) pydantic inserts after a list index are ours,
    not keys of the submitted tree, so they are dropped.
    """
    parts: list[int | str] = ["root"]
    for index, part in enumerate(loc):
        if index and isinstance(loc[index - 1], int) and part in ("condition", "group"):
            continue
        parts.append(part)
    return parts


def error_path(parts: Sequence[int | str]) -> str:
    """Render an item location as ``root.items[2].operator``."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


class InvalidInventory(InvalidInput):
    """The condition tree does not follow the grammar; ``details`` names every bad item."""

    code = "invalid_inventory"


def parse_inventory_tree(data: object) -> InventoryTree:
    """Validate a condition tree as saved by an API client.

    Accepts the bare root, ``{"version": 2, "tree": root}`` or the stored one-element list
    ``[{"version": 2, "tree": root}]``. Raises :class:`InvalidInventory` whose ``details``
    are ``{"loc": ["root", "items", 2, "operator"], "path": "root.items[2].operator",
    "msg": ...}`` items.
    """
    tree = _unwrap(data)
    try:
        return InventoryTree.model_validate(tree)
    except ValidationError as exc:
        details = [_detail(error["loc"], _message(error["msg"])) for error in exc.errors()]
        summary = "; ".join(f"{d['path']}: {d['msg']}" for d in details)
        raise InvalidInventory(f"invalid inventory: {summary}", details=details) from None


def _detail(loc: Sequence[int | str], msg: str) -> dict[str, Any]:
    parts = item_location(loc)
    return {"loc": parts, "path": error_path(parts), "msg": msg}


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _unwrap(data: object) -> object:
    if isinstance(data, list):
        if len(data) != 1:
            raise _envelope_error("a saved inventory holds exactly one {version, tree} entry")
        data = data[0]
    if isinstance(data, dict) and "version" in data:
        if data.get("version") != 2:
            raise _envelope_error(f"unsupported inventory version {data.get('version')!r}")
        if set(data) - {"version", "tree"}:
            raise _envelope_error("only 'version' and 'tree' are allowed next to each other")
        return data.get("tree")
    return data


def _envelope_error(message: str) -> InvalidInventory:
    detail = {"loc": ["root"], "path": "root", "msg": message}
    return InvalidInventory(f"invalid inventory: {message}", details=[detail])
