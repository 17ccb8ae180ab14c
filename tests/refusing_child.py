"""``python -m tests.refusing_child PORT``: once something listens on PORT, exit as a child
refusing its settings does (2), so the supervisor tests know the other child was up."""

from __future__ import annotations

import socket
import sys
import time

from service.supervisor import EXIT_SETTINGS

if __name__ == "__main__":
    port = int(sys.argv[1])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    print(f"refusing: port {port} is served", file=sys.stderr)
    sys.exit(EXIT_SETTINGS)
