"""A newcomer's first hour with the CLI and a real `serve`: one line per mistake, help, docs."""

from __future__ import annotations

import socket
from pathlib import Path

import orjson

from tests.helpers import ROOT, Server, cli, free_port
from tests.pdfs import prose_pdf


def test_busy_port_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = cli("serve", "--port", str(port), TORI_DATA_DIR=str(tmp_path), timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(port) in lines[0] and "--port" in lines[0], out.stderr


def test_submit_to_a_stopped_service_names_the_url(tmp_path: Path) -> None:
    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(prose_pdf(1))
    url = f"http://127.0.0.1:{free_port()}"
    out = cli("submit", str(pdf), "--url", url, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "Traceback" not in out.stderr, out.stderr


def test_submit_with_nothing_to_submit_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a pdf")
    out = cli("submit", str(tmp_path), timeout=60)
    assert out.returncode == 2 and "no PDF found" in out.stderr


def test_every_command_explains_itself() -> None:
    for command in ("serve", "worker", "migrate", "config", "submit", "status", "bench"):
        out = cli(command, "--help")
        assert out.returncode == 0 and len(out.stdout.splitlines()) > 3, command
    assert "Postgres" in cli("bench", "--help").stdout  # --database-url, not --url
    assert "--database-url" in cli("bench", "--help").stdout


def test_docs_stand_alone() -> None:
    texts = [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("tori_ingest/**/*.py")]
    for path in texts:
        assert "../shared" not in path.read_text(), path
    assert "SPEC §" not in cli("--help").stdout + cli("bench", "--help").stdout


def test_ready_is_logged_once_and_only_when_ready(server: Server) -> None:
    events = [orjson.loads(line).get("event") for line in server.log_path.read_text().splitlines()
              if line.startswith("{")]  # fmt: skip
    assert events.count("service.ready") == 1
    assert events.index("service.starting") < events.index("service.ready")
    assert server.client.get("/readyz").status_code == 200
