"""Who this copy is: one name (host:pid) for its Procrastinate worker, its `tori_copies` row and
the jobs it runs, so the dashboard can join them by equality."""

from __future__ import annotations

import os
import socket


def copy_name() -> str:
    """host:pid of this process (a copy of the binary)."""
    return f"{socket.gethostname()}:{os.getpid()}"
