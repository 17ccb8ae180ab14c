from __future__ import annotations

from typing import Any

import pytest

from service.errors import InvalidInput
from service.inventory.conditions import (
    MAX_DEPTH,
    Condition,
    Group,
    InvalidInventory,
    parse_inventory_tree,
)


def cond(field: str, operator: str = "equals", value: str = "x") -> dict[str, Any]:
    return {"id": "c", "field": field, "operator": operator, "value": value}


def root(*items: Any, logic: str = "AND") -> dict[str, Any]:
    return {"type": "root", "internalLogic": logic, "items": list(items)}


def errors_of(data: object) -> dict[str, str]:
    with pytest.raises(InvalidInventory) as caught:
        parse_inventory_tree(data)
    assert isinstance(caught.value, InvalidInput)
    return {detail["path"]: detail["msg"] for detail in caught.value.details}


@pytest.mark.parametrize(
    "field",
    [
        "name",
        "location",
        "role",
        "status",
        "tag",
        "device_type",
        "manufacturer",
        "platform",
        "cf_environment",
        "cf_ssh_port",
    ],
)
@pytest.mark.parametrize("operator", ["equals", "not_equals"])
def test_every_field_accepts_exact_operators(field: str, operator: str) -> None:
    tree = parse_inventory_tree(root(cond(field, operator)))
    item = tree.items[0]
    assert isinstance(item, Condition)
    assert (item.field, item.operator) == (field, operator)


@pytest.mark.parametrize("field", ["name", "location", "cf_owner"])
@pytest.mark.parametrize("operator", ["contains", "not_contains"])
def test_contains_is_accepted_where_nautobot_has_a_filter(field: str, operator: str) -> None:
    tree = parse_inventory_tree(root(cond(field, operator)))
    assert isinstance(tree.items[0], Condition)


@pytest.mark.parametrize(
    "field", ["role", "status", "tag", "device_type", "manufacturer", "platform", "has_primary"]
)
def test_contains_on_exact_only_fields_is_rejected_not_degraded(field: str) -> None:
    errors = errors_of(root(cond("name"), cond(field, "contains", "True")))
    assert list(errors) == ["root.items[1].operator"]
    assert "use equals or not_equals" in errors["root.items[1].operator"]


def test_unsupported_operators_from_the_old_ui_are_rejected_with_their_path() -> None:
    tree = root(
        cond("name"),
        {
            "type": "group",
            "logic": "OR",
            "internalLogic": "AND",
            "items": [cond("role"), cond("name", "starts_with")],
        },
        cond("platform", "is_empty"),
    )
    errors = errors_of(tree)
    assert set(errors) == {"root.items[1].items[1].operator", "root.items[2].operator"}


def test_error_details_carry_loc_path_and_message() -> None:
    with pytest.raises(InvalidInventory) as caught:
        parse_inventory_tree(root(cond("name"), cond("name"), cond("colour")))
    [detail] = caught.value.details
    assert detail["loc"] == ["root", "items", 2, "field"]
    assert detail["path"] == "root.items[2].field"
    assert "unknown field 'colour'" in detail["msg"]
    assert "root.items[2].field" in caught.value.message


@pytest.mark.parametrize(
    "field",
    ["cf_", "cf_bad-key", "cf_x) { id } #", "cf_1abc", "custom_owner", "Name", ""],
)
def test_field_names_outside_the_grammar_are_rejected(field: str) -> None:
    assert "root.items[0].field" in errors_of(root(cond(field)))


@pytest.mark.parametrize("value", ["True", "false", "TRUE"])
def test_has_primary_takes_booleans(value: str) -> None:
    parse_inventory_tree(root(cond("has_primary", "equals", value)))


def test_has_primary_rejects_other_values() -> None:
    errors = errors_of(root(cond("has_primary", "equals", "yes")))
    assert errors == {"root.items[0].value": "value 'yes' must be 'True' or 'False'"}


def test_empty_values_groups_and_roots_are_rejected() -> None:
    assert "root.items[0].value" in errors_of(root(cond("name", "equals", "  ")))
    assert "root.items[0].items" in errors_of(
        root({"type": "group", "logic": "AND", "internalLogic": "AND", "items": []})
    )
    # An empty tree would mean "every device": that has to be an explicit choice.
    assert "root.items" in errors_of(root())


def test_items_that_are_neither_condition_nor_group_are_rejected() -> None:
    errors = errors_of(root(cond("name"), {"type": "grop", "items": []}, "name=x"))
    assert set(errors) == {"root.items[1]", "root.items[2]"}
    assert "{field, operator, value}" in errors["root.items[1]"]


def test_unknown_keys_and_logic_values_are_rejected() -> None:
    errors = errors_of(
        root(
            {**cond("name"), "operater": "equals"},
            {"type": "group", "logic": "XOR", "internalLogic": "AND", "items": [cond("name")]},
            logic="NAND",
        )
    )
    assert set(errors) == {"root.items[0].operater", "root.items[1].logic", "root.internalLogic"}


def test_nesting_depth_is_bounded() -> None:
    node: dict[str, Any] = cond("name")
    for _ in range(MAX_DEPTH + 1):
        node = {"type": "group", "logic": "AND", "internalLogic": "AND", "items": [node]}
    errors = errors_of(root(node))
    assert "nested" in errors["root"]


@pytest.mark.parametrize("wrap", ["bare", "versioned", "stored"])
def test_saved_forms_are_accepted_and_round_trip(wrap: str) -> None:
    tree = root(
        cond("location", "contains", "fra"),
        {
            "id": "g1",
            "type": "group",
            "logic": "NOT",
            "internalLogic": "OR",
            "items": [cond("tag", "equals", "core"), cond("cf_owner", "not_contains", "ops")],
        },
        logic="OR",
    )
    data: object = {
        "bare": tree,
        "versioned": {"version": 2, "tree": tree},
        "stored": [{"version": 2, "tree": tree}],
    }[wrap]
    parsed = parse_inventory_tree(data)
    group = parsed.items[1]
    assert isinstance(group, Group)
    assert (group.logic, group.internal_logic, len(group.items)) == ("NOT", "OR", 2)
    saved = parsed.to_saved()
    assert saved[0]["version"] == 2
    assert saved[0]["tree"]["internalLogic"] == "OR"
    assert saved[0]["tree"]["items"][1]["internalLogic"] == "OR"
    assert parse_inventory_tree(saved) == parsed


@pytest.mark.parametrize(
    "data",
    [
        [{"version": 1, "tree": {}}],
        [],
        [{"version": 2, "tree": {}}, {"version": 2, "tree": {}}],
        {"version": 2, "tree": {}, "extra": 1},
    ],
)
def test_envelopes_other_than_one_version_2_tree_are_rejected(data: object) -> None:
    assert "root" in errors_of(data)
