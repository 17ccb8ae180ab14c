"""The arq worker process: ``dispatch_job``, the crons, heartbeats and upkeep.

``app`` builds the arq worker of one queue and its resources; ``dispatch`` runs one run
from pending to its final state; ``context`` types arq's context dict; ``health`` keeps the
worker's heartbeat key; ``maintenance`` reaps runs of lost workers and re-queues runs Redis
lost; ``retention`` deletes old finished runs; ``device_cache`` fires the device cache
refresh. May import every wing below it (scheduling, executors, runs, queue, the clients,
access, db); never the API, the console or the CLI.
"""
