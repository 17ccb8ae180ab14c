"""A run's life: the guarded state machine, run requests, reporting, events, following.

``lifecycle`` holds every status change of a job run as one conditional UPDATE and puts a
committed run on the queue; ``requests`` turns "this job type or template with these
parameters" into a validated request; ``reporting`` writes progress, per-target rows and
events while a run works; ``events`` reads a run's event stream for live watchers and
``watch`` serves it as Server-Sent Events; ``retries`` holds retry policies and turns a
failed attempt into the next attempt of the same run, keeping the failed one. People read
runs through ``queries`` (shown as ``views``) and act on them through ``commands`` — the
API and the console alike, so which runs a caller sees and may change is decided here once.
May import ``service.queue``, ``service.access``, ``service.db`` and the shared root
modules; never the worker, the scheduler, the executors, the API or the console.
"""
