"""When schedules fire and turning fires into runs.

``cron`` matches crontab expressions (parsed by cronsim); ``wall_clock`` maps local times
to instants across DST; ``specs`` computes a schedule's fires as pure functions;
``stored`` turns ``job_schedules`` rows into specs and checks them before they are
written; ``claims`` claims due schedules with ``FOR UPDATE SKIP LOCKED`` and inserts one
run per fire; ``editing`` creates, changes, lists and previews schedules for people (the
API and the console share it, with the models in ``schemas``); ``status`` says whether the
scheduler ticks and what fires next. A fire becomes a run of a template validated against
its job type, so this wing sits above ``executors``; it may import ``executors``,
``service.runs``, ``service.queue``, ``service.access``, ``service.db`` and the shared
root modules, never the worker, the API or the console.
"""
