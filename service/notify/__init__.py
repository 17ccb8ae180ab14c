"""Notifications: every verdict can reach a person (invariant 13).

Owns the outbox of run facts (written by the statement that ends a run), their
interpretation into events (run failed or lost, outcome changed, back after failures,
duration anomalies) with schedule health (dead-man's switch, pause after K failures),
notification channels (webhook, Slack-compatible, email) and rules, and delivery: rules
turn events into deliveries, sent in order per rule and channel with retries, backoff and
a record of every attempt. Sits below ``service.runs`` (which writes the outbox) and may
import the outside-world clients, ``service.access``, ``service.db`` and the shared root
modules only; the API and the worker's crons call into it.
"""
