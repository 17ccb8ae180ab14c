"""Devices inside a maintenance window are skipped inside a run: which targets, and why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from executors.base import Target
from executors.services import Services
from service.devices.targeting import DeviceTargetSpec
from service.runs.lifecycle import RunStart
from service.scheduling.windows import Window, load_windows, skipped_reason


async def devices_in_maintenance(
    services: Services, start: RunStart, targets: Sequence[Target]
) -> dict[str, str]:
    """Target key → ``maintenance window "<name>"`` for each device target that an open
    inventory-scoped window covering this run selects. Only device targets are looked at;
    a window whose inventory cannot be resolved fails the run (nothing narrows silently)."""
    devices = {target.key for target in targets if "device" in target.data}
    if not devices:
        return {}
    now = datetime.now(UTC)
    open_windows = [
        window
        for window in await load_windows(services.sessions)
        if window.inventory_id is not None
        and window.scopes(
            template_id=start.template_id, schedule_id=start.schedule_id, job_type=start.job_type
        )
        and window.is_open(now)
    ]
    skipped: dict[str, list[Window]] = {}
    resolver = services.device_resolver()
    for window in open_windows:
        spec = DeviceTargetSpec(inventory_id=window.inventory_id)
        resolution = await resolver.resolve_spec(services.sessions, spec)
        for device in resolution.devices:
            if device.id in devices:
                skipped.setdefault(device.id, []).append(window)
    return {key: skipped_reason(windows) for key, windows in skipped.items()}
