"""Who may do what, and the record of what they did.

``credentials`` validates, seals and (in the worker, just before use) decrypts stored
credentials; ``audit`` writes the audit trail. Ownership of private resources is decided
here so that the API and the executors ask the same rule. May import ``service.db`` and
the shared root modules only.
"""
