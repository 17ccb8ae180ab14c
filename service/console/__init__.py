"""The operator console: server-rendered pages at ``/`` beside the API at ``/api``.

It owns its pages (Jinja2 templates extending one base layout), its stylesheet and the few
lines of JavaScript each page needs (every asset served from here), the sign-in that turns
an API token into a server-side session, and the CSRF token of every changing form. It
reads and changes data only through the functions the API routers use (``service.runs``,
``service.scheduling``, ``service.access``, ``service.queue``…), so both faces follow the
same rules. May import every wing below the API (worker, scheduling, executors, runs, the
outside-world clients, access, db) and the shared root modules; never ``service.api``,
``service.client`` or the CLI.
"""
