"""Turn "run this job type / template with these parameters" into a validated RunRequest."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from service.db.models import JobTemplate, TriggeredBy
from service.errors import InvalidInput
from service.runs.lifecycle import RunRequest
from service.runs.retries import RetryPolicy
from service.settings import Settings


class JobType(Protocol):
    """What a run request needs of a job type; ``executors.get_executor`` returns one."""

    @property
    def job_type(self) -> str: ...

    @property
    def queue(self) -> str: ...

    @property
    def config(self) -> type[BaseModel]: ...


#: Looks a job type (or alias) up by name, raising ``UnknownJobType`` for an unknown one.
JobTypes = Callable[[str], JobType]


def queue_for(settings: Settings, executor: JobType, override: str | None = None) -> str:
    """The queue a run goes to: an explicit override, else the job type's role."""
    if override:
        return override
    return settings.queues.devices if executor.queue == "devices" else settings.queues.default


def merge_parameters(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides win key by key; a key present with ``None``, ``0`` or ``False`` still wins."""
    merged = dict(base)
    merged.update(overrides)
    return merged


def validated_config(
    executor: JobType, parameters: Mapping[str, Any], *, field: str = "parameters"
) -> BaseModel:
    """The job type's Config of ``parameters``; errors name ``field`` and the path inside."""
    try:
        return executor.config.model_validate(dict(parameters))
    except ValidationError as exc:
        details = [
            {"loc": [field, *error["loc"]], "msg": error["msg"], "type": error["type"]}
            for error in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise InvalidInput(
            f"invalid {field} for job type {executor.job_type}", details=details
        ) from None


def validate_config(
    executor: JobType, parameters: Mapping[str, Any], *, field: str = "parameters"
) -> dict[str, Any]:
    """:func:`validated_config` as the JSON stored on templates, schedules and runs."""
    dumped: dict[str, Any] = validated_config(executor, parameters, field=field).model_dump(
        mode="json"
    )
    return dumped


def adhoc_request(
    settings: Settings,
    job_types: JobTypes,
    *,
    job_type: str,
    parameters: Mapping[str, Any],
    triggered_by: TriggeredBy,
    executed_by: str | None,
    queue: str | None = None,
    timeout_seconds: int | None = None,
    retry: RetryPolicy | None = None,
) -> RunRequest:
    """A run of a job type without a template; ``retry`` defaults to lost workers only."""
    executor = job_types(job_type)
    return RunRequest(
        job_type=executor.job_type,
        job_name=executor.job_type,
        queue=queue_for(settings, executor, queue),
        parameters=validate_config(executor, parameters),
        triggered_by=triggered_by,
        executed_by=executed_by,
        timeout_seconds=timeout_seconds,
        max_attempts=retry.max_attempts if retry else 1,
        retry_policy=retry.stored() if retry else None,
    )


def template_request(
    settings: Settings,
    job_types: JobTypes,
    template: JobTemplate,
    *,
    overrides: Mapping[str, Any],
    triggered_by: TriggeredBy,
    executed_by: str | None,
    job_name: str | None = None,
    schedule_id: int | None = None,
    credential_id: int | None = None,
) -> RunRequest:
    """A run of a template, with parameter overrides validated against its Config."""
    executor = job_types(template.job_type)
    return RunRequest(
        job_type=executor.job_type,
        job_name=job_name or template.name,
        queue=queue_for(settings, executor, template.queue),
        parameters=validate_config(executor, merge_parameters(template.config, overrides)),
        triggered_by=triggered_by,
        executed_by=executed_by,
        template_id=template.id,
        schedule_id=schedule_id,
        credential_id=credential_id,
        timeout_seconds=template.timeout_seconds,
        max_attempts=template.max_attempts,
        retry_policy=template.retry_policy,
    )
