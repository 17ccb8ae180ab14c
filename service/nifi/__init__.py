"""The NiFi REST client and the NiFi checks, against clusters as they behave.

Transport: ``client`` (one aiohttp session per node, answers in ``responses``; 409/503
mean "node not ready", TLS failures named by ``tls_errors``, stores read by
``tls_stores`` into ``tls`` contexts, proxies per ``proxies``, tokens from ``tokens``),
``pool`` (a worker's clients, closed when their endpoint changes), ``cluster`` (the
primary first, failover, ``readiness`` back-off). What NiFi says: ``status`` (queues),
``health`` (cluster summary and nodes), ``bulletins``. Verdicts as pure functions:
``queue_check``/``queue_report``, ``health_check``, ``process_group_check``; end to end:
``checks`` and ``cluster_checks``; stored clusters and configurations: ``stored``,
``configs``, ``bulletin_cursors``; ``probe`` is the API's connection test. May import
``service.access``, ``service.db`` and the shared root modules.
"""
