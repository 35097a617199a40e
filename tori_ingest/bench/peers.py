"""A peer to compare the structure figures with: pymupdf4llm, in a venv of its own.

pymupdf4llm (and PyMuPDF under it) is AGPL: it is never a dependency of the product, never
imported here, and never installed into the product's environment. The benchmark makes a
separate venv (`.bench-peers/` by default, ignored by git), installs the pinned versions into it,
and runs one subprocess for all files that prints Markdown per file as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

PEER_NAME = "pymupdf4llm"
# The newest releases installable here (`pip index versions`): pymupdf 2.1 needs a
# pymupdf-layout 2.1 that has no wheel yet, so both stay on 2.0.
PINS = ("pymupdf4llm==2.0", "pymupdf==2.0")
DEFAULT_PATH = Path(".bench-peers")
INSTALL_TIMEOUT_S = 900
RUN_TIMEOUT_S = 1800

# Runs inside the peer's venv: argv = "layout" or "legacy", the output file, then the PDFs. One
# Markdown string per file, its pages joined with "<!-- page N -->" markers; a file that fails
# gets "". pymupdf4llm 2.x uses its layout engine (pymupdf-layout, a dependency of pymupdf 2.x)
# by default; "legacy" switches it off (the engine of pymupdf4llm 0.x).
SCRIPT = """
import json, sys
import pymupdf4llm

mode, out, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
if mode == "legacy":
    pymupdf4llm.use_layout(False)
result, errors = {}, {}
for path in paths:
    try:
        chunks = pymupdf4llm.to_markdown(path, page_chunks=True, show_progress=False)
    except Exception as exc:
        result[path], errors[path] = "", f"{type(exc).__name__}: {exc}"
        continue
    result[path] = "".join(
        f"\\n\\n<!-- page {n} -->\\n\\n" + chunk.get("text", "")
        for n, chunk in enumerate(chunks, start=1)
    ).strip()
with open(out, "w", encoding="utf-8") as f:
    json.dump({"markdown": result, "errors": errors}, f)
"""


class PeerUnavailable(RuntimeError):
    """The peer's venv could not be made or run (offline, no wheel for this platform, ...)."""


def _python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _stamp(path: Path) -> Path:
    return path / "tori-peer-pins.txt"


def ensure_peer_venv(
    path: Path = DEFAULT_PATH, log: Callable[[str], None] = lambda _: None
) -> Path:
    """The peer venv's python, creating the venv and installing the pins when missing."""
    python = _python(path)
    stamp = _stamp(path)
    if python.exists() and stamp.exists() and stamp.read_text().split() == list(PINS):
        return python
    log(f"peer: creating {path} with {' '.join(PINS)} (once)")
    try:
        made = subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(path)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
        if made.returncode != 0:
            raise PeerUnavailable(f"cannot create the peer venv {path}: {made.stderr.strip()}")
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *PINS],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise PeerUnavailable(f"cannot create the peer venv {path}: {exc}") from exc
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-1:])[:300]
        raise PeerUnavailable(f"cannot install {' '.join(PINS)} into {path}: {tail}")
    stamp.write_text("\n".join(PINS) + "\n")
    return python


def peer_markdown(
    pdf_paths: Iterable[Path | str], python: Path | None = None, layout: bool = True
) -> dict[str, str]:
    """{path: Markdown} for every file, from one subprocess in the peer's venv (`layout`:
    pymupdf4llm's default engine; False: its legacy one)."""
    python = python or ensure_peer_venv()
    paths = [str(p) for p in pdf_paths]
    with tempfile.TemporaryDirectory(prefix="tori-peer-") as tmp:
        out = Path(tmp) / "out.json"
        try:
            done = subprocess.run(
                [str(python), "-c", SCRIPT, "layout" if layout else "legacy", str(out), *paths],
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise PeerUnavailable(f"{PEER_NAME} did not run: {exc}") from exc
        if done.returncode != 0 or not out.exists():
            tail = " ".join(done.stderr.strip().splitlines()[-2:])[:300]
            raise PeerUnavailable(f"{PEER_NAME} failed (exit {done.returncode}): {tail}")
        result = json.loads(out.read_text(encoding="utf-8"))
    markdown: dict[str, str] = result["markdown"]
    return markdown
