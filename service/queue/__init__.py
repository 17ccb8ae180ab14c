"""Redis as transport: one arq job per run, queue depth and purge, the Lua scripts.

``transport`` puts a run's ``dispatch_job`` on its queue (job id ``run:<id>``), removes it
(with any in-progress key, in one round trip), wakes and aborts it; ``control`` reports
what waits in each queue and purges one; ``scripts`` runs Lua check-and-sets in one round
trip; ``outage`` tells Redis being away from a fault and logs it once. PostgreSQL stays
the record: nothing here decides a run's status. May import ``service.db`` and the shared
root modules only.
"""
