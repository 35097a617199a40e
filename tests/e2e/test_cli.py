"""The console script as a user runs it: config, migrate, start-up refusals, embedded mode."""

import json
import signal
from pathlib import Path

import psutil

from tests.helpers import Server, StartServer, cli
from tests.pdfs import make_pdf, prose_pdf


def test_config_prints_every_setting_with_secrets_masked() -> None:
    out = cli("config", DATABASE_URL="postgresql://u:hunter2@db/x", TORI_API_TOKENS="a,b")
    assert out.returncode == 0
    settings = json.loads(out.stdout)
    for name in (
        "DATABASE_URL",
        "PORT",
        "TORI_DATA_DIR",
        "TORI_SPACY_MODEL",
        "TORI_POOL_SIZE",
        "TORI_MAX_UPLOAD_MB",
        "TORI_MAX_PAGES",
        "TORI_JOB_TIMEOUT_S",
        "TORI_MAX_MEMORY_MB",
        "TORI_MAX_TASKS_PER_CHILD",
        "TORI_MAX_ATTEMPTS",
        "TORI_SHUTDOWN_GRACE_S",
        "TORI_RETENTION_DAYS",
        "TORI_API_TOKENS",
        "TORI_CORS_ORIGINS",
        "TORI_AUTO_MIGRATE",
        "TORI_LOG_FORMAT",
        "TORI_METRICS_PORT",
        "TORI_IMPORT_DIR",
        "TORI_STORAGE_DIR",
    ):
        assert name in settings
    assert settings["DATABASE_URL"] == "postgresql://***@db/x"  # userinfo hidden whole
    assert "hunter2" not in out.stdout and "a,b" not in out.stdout
    assert settings["TORI_MAX_UPLOAD_MB"] == 200 and settings["TORI_MAX_PAGES"] == 5000


def test_bad_setting_value_is_a_clear_error() -> None:
    out = cli("config", TORI_POOL_SIZE="many")
    assert out.returncode == 2 and "TORI_POOL_SIZE" in out.stderr


def test_serve_refuses_public_bind_without_auth() -> None:
    out = cli("serve", "--host", "0.0.0.0", DATABASE_URL="postgresql://unused/x")
    assert out.returncode == 2
    assert "TORI_API_TOKENS" in out.stderr and "--insecure" in out.stderr


def test_unknown_model_is_a_startup_error_naming_the_fix() -> None:
    out = cli(
        "worker", TORI_SPACY_MODEL="en_core_web_nonexistent", DATABASE_URL="postgresql://unused/x"
    )
    assert out.returncode == 2
    assert "pip install" in out.stderr


def test_migrate_is_idempotent(empty_db_url: str) -> None:
    first = cli("migrate", DATABASE_URL=empty_db_url)
    assert first.returncode == 0, first.stderr
    assert "001_jobs.sql" in first.stdout
    again = cli("migrate", DATABASE_URL=empty_db_url)
    assert again.returncode == 0 and "up to date" in again.stdout


def postgres_running(pgdata: Path) -> bool:
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if proc.info["name"] == "postgres" and str(pgdata) in " ".join(
                proc.info["cmdline"] or []
            ):
                return True
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return False


async def test_embedded_default_serves_and_stops_postgres(data_dir: Path) -> None:
    srv = await Server("", data_dir).wait_ready(timeout=180)
    try:
        job = await srv.wait_job(srv.upload(prose_pdf(2)).json()["job_id"])
        assert job["status"] == "succeeded"
        assert (data_dir / "pg" / "PG_VERSION").exists()
        assert (data_dir / "files").is_dir()
        assert postgres_running(data_dir / "pg")
    finally:
        code = srv.stop(signal.SIGTERM)
    assert code == 0, srv.log_text()
    assert not postgres_running(data_dir / "pg")
    # A second start reuses the same database: the job is still there.
    again = await Server("", data_dir).wait_ready(timeout=180)
    try:
        assert again.status(job["job_id"])["status"] == "succeeded"
    finally:
        code = again.stop()
    assert code == 0, again.log_text()


async def test_a_killed_run_does_not_leave_postgres_running_for_good(data_dir: Path) -> None:
    """SIGKILL skips pgserver's exit handler: its pid stays in the handle list. The next run
    forgets it, so that run's exit is the last one again and stops Postgres."""
    killed = await Server("", data_dir).wait_ready(timeout=180)
    dead = killed.stop(signal.SIGKILL)
    assert dead == -signal.SIGKILL
    handles = data_dir / "pg" / ".handle_pids.json"
    assert killed.proc.pid in json.loads(handles.read_text())  # the stale handle
    assert postgres_running(data_dir / "pg")  # left running by the killed run
    again = await Server("", data_dir).wait_ready(timeout=180)
    assert killed.proc.pid not in json.loads(handles.read_text())
    assert again.stop(signal.SIGTERM) == 0, again.log_text()
    assert not postgres_running(data_dir / "pg")


def test_submit_directory_follows_jobs_and_fails_on_failure(server: Server, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "nested").mkdir(parents=True)
    (docs / "a.pdf").write_bytes(prose_pdf(2))
    (docs / "nested" / "b.pdf").write_bytes(prose_pdf(3))
    (docs / "notes.txt").write_text("not collected: not a .pdf")
    ok = cli("submit", str(docs), "--url", server.base)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("succeeded") == 3 and "notes.txt" not in ok.stdout  # 2 rows + counts
    assert ok.stdout.strip().splitlines()[-1] == "2 succeeded"
    assert f"skipped {docs / 'notes.txt'}: not a PDF" in ok.stderr  # named, not silently left
    again = cli("submit", str(docs / "a.pdf"), "--url", server.base)  # deduplicated: born done
    (row,) = [ln for ln in again.stdout.splitlines() if "│" in ln and "succeeded" in ln]
    assert "2" in [cell.strip() for cell in row.split("│")], again.stdout  # its pages, not -

    (docs / "locked.pdf").write_bytes(make_pdf(["secret"], user_password="pw"))
    (tmp_path / "fake.pdf").write_bytes(b"hello")
    bad = cli("submit", str(docs / "locked.pdf"), str(tmp_path / "fake.pdf"), "--url", server.base)
    assert bad.returncode == 1
    assert "encrypted" in bad.stdout and "unsupported_type" in bad.stdout
    assert "unsupported_type:" in bad.stdout  # the code and then the server's message

    missing = cli("submit", str(tmp_path / "nope.pdf"), "--url", server.base)
    assert missing.returncode == 2 and "no such file" in missing.stderr


async def test_submit_says_why_it_was_refused(start_server: StartServer, tmp_path: Path) -> None:
    secured = await start_server(TORI_API_TOKENS="app:s3cret")
    doc = tmp_path / "a.pdf"
    doc.write_bytes(prose_pdf(1))
    out = cli("submit", str(doc), "--url", secured.base)
    assert out.returncode == 1 and "unauthorized:" in out.stdout  # code, then the message
    assert "--token" in out.stdout and "TORI_TOKEN" in out.stdout, out.stdout


async def test_status_counts_and_one_job(server: Server) -> None:
    job = await server.wait_job(server.upload(prose_pdf(1)).json()["job_id"])
    counts = cli("status", DATABASE_URL=server.db_url)
    assert counts.returncode == 0, counts.stderr
    assert json.loads(counts.stdout)["jobs"]["succeeded"] >= 1
    one = cli("status", job["job_id"], DATABASE_URL=server.db_url)
    assert json.loads(one.stdout)["status"] == "succeeded"
    assert cli("status", "not-a-job", DATABASE_URL=server.db_url).returncode == 1


async def test_submit_by_reference_posts_paths_not_bytes(
    start_server: StartServer, tmp_path: Path
) -> None:
    tree = tmp_path / "import"
    (tree / "2024").mkdir(parents=True)
    for i in range(3):
        (tree / "2024" / f"doc{i}.pdf").write_bytes(prose_pdf(1 + i))
    srv = await start_server(TORI_IMPORT_DIR=str(tree))
    out = cli(
        "submit", "--by-reference", str(tree / "2024"), "--url", srv.base, TORI_IMPORT_DIR=str(tree)
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == "3 succeeded"
    jobs = srv.client.get("/jobs", params={"lane": "bulk"}).json()["jobs"]
    assert len(jobs) == 3 and all(j["status"] == "succeeded" for j in jobs)
    # No bytes went over HTTP; the service copied each file into its store (see README).
    assert len(list(srv.storage.rglob("*.pdf"))) == 3
    elsewhere = tmp_path / "elsewhere.pdf"
    elsewhere.write_bytes(prose_pdf(1))
    outside = cli(
        "submit", "--by-reference", str(elsewhere), "--url", srv.base, TORI_IMPORT_DIR=str(tree)
    )
    assert outside.returncode == 2 and "TORI_IMPORT_DIR" in outside.stderr
    assert cli("submit", "--by-reference", str(tree), "--url", srv.base).returncode == 2


async def test_storage_migrate_copies_into_the_current_store(
    server: Server, tmp_path: Path
) -> None:
    job = await server.wait_job(
        server.upload(make_pdf([f"moving {tmp_path.name}"])).json()["job_id"]
    )
    assert job["status"] == "succeeded"
    target = tmp_path / "bucket-stand-in"
    env = {"DATABASE_URL": server.db_url, "TORI_STORAGE_URL": f"file://{target}"}
    moved = cli("storage", "migrate", "--from", f"file://{server.storage}", **env)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert " copied, 0 already there, 0 missing" in moved.stdout
    names = {p.name for p in target.rglob("*.pdf")}
    assert names == {p.name for p in server.storage.rglob("*.pdf")} and names
    again = cli("storage", "migrate", "--from", f"file://{server.storage}", **env)
    assert again.returncode == 0 and again.stdout.startswith("0 copied"), again.stdout
    same = cli("storage", "migrate", "--from", f"file://{target}", **env)
    assert same.returncode == 2 and "current store" in same.stderr
