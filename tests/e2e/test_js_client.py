"""The JavaScript client (clients/js, SPEC §18) against a real service: its own Node test suite
(`node --test`), which starts `tori-ingest serve` on loopback on a scratch database of ours
and restarts it mid-`follow`. `make test` builds the client first (npm ci from its lock file,
types generated from this service's OpenAPI document)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import new_database

JS = Path(__file__).resolve().parents[2] / "clients" / "js"


async def test_the_javascript_client_against_a_real_service(
    admin_url: str, template_url: str
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the JavaScript client is not tested")
    if not (JS / "dist" / "index.js").exists():
        pytest.skip("clients/js is not built (`make test` builds it when npm is installed)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORI_", "DATABASE_"))}
    env["DATABASE_URL"] = await new_database(admin_url)
    env["TORI_INGEST"] = str(Path(sys.executable).with_name("tori-ingest"))
    tests = sorted(str(p.relative_to(JS)) for p in (JS / "test").glob("*.test.mjs"))
    run = await asyncio.to_thread(
        subprocess.run,
        [node, "--test", *tests],
        cwd=JS,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "# fail 0" in report and "# cancelled 0" in report, report[-3000:]
    assert "# pass 0" not in report, report[-3000:]
