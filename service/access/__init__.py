"""Who may do what, and the record of what they did.

``principals`` holds the roles and their permissions and the ``Principal`` every request
(and every run) acts as; ``tokens`` issues, looks up and revokes API tokens (the console's
sessions hold a token's digest and ask the same lookup); ``resources`` marks the fields
that name stored resources and finds them in a request; ``ownership`` is the one rule
deciding whether a principal may *use* a resource (global, its own, or any for an admin;
a shared resource holding a credential only with that credential), asked by every write
path and by the worker before a run uses anything, and ``visibility`` turns it into query
conditions for readers (``runs_visible_to``); ``credentials`` validates, seals and (in
the worker, just before use) decrypts stored credentials, and ``credential_records`` is
how people create and read them; ``audit`` writes and lists the audit trail. The API, the
console and the executors all ask these, so a rule lives in one place. May import
``service.db`` and the shared root modules only.
"""
