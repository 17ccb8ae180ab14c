"""What the CLI does for an operator: queue a run and follow it in the terminal.

Sits on top beside the API; may import any wing below the API, never ``service.api``.
"""
