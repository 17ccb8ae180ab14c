"""Who may do what, and the record of what they did.

``principals`` holds the roles and their permissions and the ``Principal`` every request
acts as; ``tokens`` issues, looks up and revokes API tokens (the console's sessions hold a
token's digest and ask the same lookup); ``ownership`` is the rule for private resources
(global for everyone, private for their owner and admins); ``credentials`` validates,
seals and (in the worker, just before use) decrypts stored credentials, and
``credential_records`` is how people create and read them; ``audit`` writes and lists the
audit trail. The API, the console and the executors all ask these, so a rule lives in one
place. May import ``service.db`` and the shared root modules only.
"""
