"""Which stored resources a request names, read from its models.

Every field that names a stored resource carries a :class:`ResourceRef` marker::

    credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None

:func:`resource_uses` walks a validated model (nested models, lists and dicts included)
and returns each named resource with where it was named, so the authorisation check
finds ids in request bodies, template configs and run parameters without a hand-kept
list. The marker also appears in the JSON Schema (``x-resource``), so clients and tests
can see which fields name resources. Markers belong on the field itself (its outermost
``Annotated``), where pydantic keeps them.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

#: JSON Schema keywords of the marker.
SCHEMA_KEY = "x-resource"
ALL_WHEN_NULL_KEY = "x-resource-null-means-all"

Loc = tuple[str | int, ...]


class ResourceKind(enum.StrEnum):
    """Stored resources a principal may or may not *use*."""

    JOB_TEMPLATE = "job_template"
    JOB_SCHEDULE = "job_schedule"
    CREDENTIAL = "credential"
    INVENTORY = "inventory"
    COMMAND_TEMPLATE = "command_template"
    GIT_REPOSITORY = "git_repository"
    NIFI_INSTANCE = "nifi_instance"
    NIFI_CLUSTER = "nifi_cluster"
    NOTIFICATION_CHANNEL = "notification_channel"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    ResourceKind.JOB_TEMPLATE: "job template",
    ResourceKind.JOB_SCHEDULE: "schedule",
    ResourceKind.CREDENTIAL: "credential",
    ResourceKind.INVENTORY: "inventory",
    ResourceKind.COMMAND_TEMPLATE: "command template",
    ResourceKind.GIT_REPOSITORY: "git repository",
    ResourceKind.NIFI_INSTANCE: "NiFi instance",
    ResourceKind.NIFI_CLUSTER: "NiFi cluster",
    ResourceKind.NOTIFICATION_CHANNEL: "notification channel",
}


@dataclass(frozen=True)
class ResourceUse:
    """One resource a request would use: its kind, its id as given (``None`` for "every
    resource of the kind") and where it was named (``("parameters", "credential_id")``)."""

    kind: ResourceKind
    id: object
    loc: Loc

    @property
    def every(self) -> bool:
        return self.id is None

    def describe(self) -> str:
        where = ".".join(str(part) for part in self.loc)
        what = f"every {self.kind.label}" if self.every else f"{self.kind.label} {self.id}"
        return f"{what} ({where})"


@dataclass(frozen=True)
class ResourceRef:
    """Marks a field whose value names a resource (an id, or a list of ids).

    ``null_means_all``: the field left out (``None``) means every resource of the kind,
    which is then what a run uses (``check_queues`` without ``cluster_ids``).
    """

    kind: ResourceKind
    null_means_all: bool = False

    def uses(self, value: Any, loc: Loc) -> Iterator[ResourceUse]:
        if value is None:
            if self.null_means_all:
                yield ResourceUse(self.kind, None, loc)
            return
        if isinstance(value, Sequence) and not isinstance(value, str):
            for index, item in enumerate(value):
                yield ResourceUse(self.kind, item, (*loc, index))
            return
        yield ResourceUse(self.kind, value, loc)

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema[SCHEMA_KEY] = self.kind.value
        if self.null_means_all:
            json_schema[ALL_WHEN_NULL_KEY] = True
        return json_schema


@functools.cache
def names_resources(model: type[BaseModel]) -> bool:
    """Whether any field of ``model``, nested models included, names a resource."""
    return SCHEMA_KEY in json.dumps(model.model_json_schema())


def marker_of(model: type[BaseModel], field: str) -> ResourceRef | None:
    """The field's marker, if it names a resource."""
    for item in model.model_fields[field].metadata:
        if isinstance(item, ResourceRef):
            return item
    return None


def resource_uses(model: BaseModel, loc: Loc = ()) -> list[ResourceUse]:
    """Every resource ``model`` names (in field order), each with where it was named."""
    uses: list[ResourceUse] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        marker = marker_of(type(model), name)
        where = (*loc, name)
        if marker is not None:
            uses.extend(marker.uses(value, where))
        else:
            uses.extend(_nested_uses(value, where))
    return uses


def _nested_uses(value: Any, loc: Loc) -> list[ResourceUse]:
    if isinstance(value, BaseModel):
        return resource_uses(value, loc)
    if isinstance(value, Mapping):
        return [use for key, item in value.items() for use in _nested_uses(item, (*loc, key))]
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [use for i, item in enumerate(value) for use in _nested_uses(item, (*loc, i))]
    return []
