"""Failure modes on demand for the test suite (TORI_TEST_HOOKS=1 only; never in production).

A marker in a PDF's first KiB (a PDF comment line) makes the pool process reading it hang,
crash, sleep or blow its memory cap, so the tests drive the real service into each fault.
"""

from __future__ import annotations

import hashlib
import os
import signal
import tempfile
import time
from pathlib import Path

HANG, CRASH = b"%tori-test-hang", b"%tori-test-crash"
SLOW, MEMORY = b"%tori-test-slow", b"%tori-test-memory"
# Crash the process reading the part that starts at page 1 of a split job; with "=once", only
# its first try (a marker file named by the document's digest remembers it).
PART_CRASH = b"%tori-test-part-crash"
SLOW_S = 4.0


def run(data: bytes, pages: tuple[int, int] | None) -> None:
    head = data[:1024]
    if HANG in head:
        while True:
            time.sleep(1)
    if CRASH in head:
        _crash()
    if PART_CRASH in head and pages is not None and pages[0] == 1:
        _part_crash(data, _value(head, PART_CRASH) == b"once")
    if SLOW in head:  # "%tori-test-slow" sleeps SLOW_S, "%tori-test-slow=12" 12 s
        seconds = _value(head, SLOW)
        time.sleep(float(seconds) if seconds.isdigit() else SLOW_S)
    if MEMORY in head:  # like a decompression bomb: far more than the address-space cap
        hog = bytearray(64 * 1024**3)
        del hog


def _value(head: bytes, marker: bytes) -> bytes:
    """What follows `marker=` on its line (b"" when nothing does)."""
    after = head.split(marker, 1)[1]
    return after[1:].split(b"\n", 1)[0].strip() if after.startswith(b"=") else b""


def _part_crash(data: bytes, once: bool) -> None:
    if once:
        seen = Path(tempfile.gettempdir()) / f"tori-test-crashed-{hashlib.sha256(data).hexdigest()}"
        if seen.exists():
            return
        seen.touch()
    _crash()


def _crash() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)
