"""``run_commands``: render a stored command template per device and run it over SSH.

Targets are an inventory, explicit device ids, or explicitly all devices, resolved
through Nautobot; an unresolvable inventory fails the run. The template (the version
current when the run starts) renders in a sandbox with the device's Nautobot record. Each
device is a target row with its rendered commands, every output it produced and its
error. Some devices failing is a completed run with outcome ``warning``; all failing is
a failed run — with every row and the summary kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from executors.base import (
    Executor,
    JobContext,
    JobResult,
    ResolveContext,
    Target,
    TargetResult,
)
from service.access.resources import ResourceKind, ResourceRef
from service.db.device_models import CommandTemplate
from service.db.models import Outcome, TargetStatus
from service.devices.command_templates import TemplateRefused, compile_template, render_commands
from service.devices.logins import run_credential_id, ssh_credentials
from service.devices.results import CommandOutput
from service.devices.targeting import (
    DeviceTargetSpec,
    from_cache,
    interleave_by_site,
    resolve_run_devices,
)
from service.errors import NotFound, OpsjobsError
from service.inventory.device import Device

logger = logging.getLogger(__name__)

#: Characters of output kept per device in its target row (the rest is cut, and said so):
#: target rows are records, not a log archive, and a fan-out holds them until it ends.
MAX_DEVICE_OUTPUT_CHARS = 1_000_000


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: DeviceTargetSpec
    command_template_id: Annotated[int, ResourceRef(ResourceKind.COMMAND_TEMPLATE)] = Field(ge=1)
    credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = Field(
        default=None, ge=1
    )
    user_variables: dict[str, Any] = Field(default_factory=dict)
    # Devices worked on at once by this run (the worker's SSH limits still apply).
    concurrency: int | None = Field(default=None, ge=1, le=10_000)


class AllDevicesFailed(OpsjobsError):
    """Every device failed; the run fails with its per-device rows kept."""

    code = "all_devices_failed"


async def resolve_targets(ctx: ResolveContext, config: Config) -> list[Target]:
    """The target devices, keyed by Nautobot id, each carrying its record."""
    resolution = await resolve_run_devices(
        ctx.services.device_resolver(), ctx.services.sessions, config.targets, run_id=ctx.run_id
    )
    return [
        Target(key=d.id, name=d.name, data={"device": d, "from_cache": resolution.cached})
        for d in resolution.devices
    ]


def _kept_outputs(outputs: Sequence[CommandOutput]) -> list[dict[str, str]]:
    """Every command with its output, cut once the device's output budget is spent."""
    left = MAX_DEVICE_OUTPUT_CHARS
    kept = []
    for item in outputs:
        text = item.output
        if len(text) > left:
            text = text[: max(left, 0)] + f"\n... {len(text) - max(left, 0)} more character(s)"
        left -= len(item.output)
        kept.append({"command": item.command, "output": text})
    return kept


async def _load_template(job: JobContext[Config]) -> CommandTemplate:
    async with job.services.sessions() as session:
        template = await session.get(CommandTemplate, job.config.command_template_id)
    if template is None:
        raise NotFound(f"command template {job.config.command_template_id} does not exist")
    return template


async def execute(job: JobContext[Config]) -> JobResult:
    """Render and run the command template on every target device."""
    services = job.services
    template_row = await _load_template(job)
    template = compile_template(template_row.content)
    template_info = {
        "id": template_row.id,
        "name": template_row.name,
        "version": template_row.version,
    }
    credential_id = await run_credential_id(services.sessions, job.run_id, job.config.credential_id)
    login = await ssh_credentials(services.sessions, services.keys, credential_id)
    variables = job.config.user_variables

    async def run_on(target: Target) -> TargetResult:
        device: Device = target.data["device"]
        try:
            commands = render_commands(template, device, variables)
        except TemplateRefused as exc:
            return TargetResult(
                outcome=Outcome.UNKNOWN,
                data={"device_id": device.id, "device_name": device.name, "error_code": exc.code},
                error=exc.message,
            )
        result = await services.ssh.run_commands(device, login, commands)
        data = {
            "device_id": device.id,
            "device_name": device.name,
            "host": result.host,
            "port": result.port,
            "platform": result.platform,
            "rendered_commands": commands,
            "outputs": _kept_outputs(result.outputs),
            "error_code": result.error_code,
            "duration": round(result.duration, 3),
        }
        outcome = Outcome.OK if result.ok else Outcome.UNKNOWN
        return TargetResult(outcome=outcome, data=data, error=result.error)

    concurrency = job.config.concurrency or services.settings.ssh.max_sessions
    order = interleave_by_site(job.targets, lambda target: target.data["device"].location)
    outcomes = await job.fan_out(run_on, concurrency=concurrency, targets=order)
    failed = [o for o in outcomes if o.status is TargetStatus.FAILED]
    total = len(outcomes)
    summary = f"commands ran on {total - len(failed)} of {total} device(s)"
    data: dict[str, Any] = {
        "command_template": template_info,
        "total": total,
        "succeeded": total - len(failed),
        "failed": len(failed),
        "failed_devices": [o.target.name for o in failed][:100],
        "targets_from_cache": from_cache([t.data for t in job.targets]),
    }
    job.checkpoint(data)
    if total and len(failed) == total:
        first = failed[0]
        raise AllDevicesFailed(
            f"all {total} device(s) failed (first: {first.target.name}: {first.result.error})"
        )
    if not total:
        return JobResult(
            outcome=Outcome.WARNING, summary="the targets matched no device", data=data
        )
    outcome = Outcome.WARNING if failed else Outcome.OK
    return JobResult(outcome=outcome, summary=summary, data=data)


EXECUTOR = Executor(
    job_type="run_commands",
    label="Run commands",
    description=(
        "Renders a command template per device (sandboxed Jinja2 with the device's Nautobot "
        "data) and runs the commands over SSH; every device's output is kept."
    ),
    config=Config,
    execute=execute,
    queue="devices",
    resolve_targets=resolve_targets,
)
