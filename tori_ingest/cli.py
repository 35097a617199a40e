"""`tori-ingest`: run the service (serve, worker), operate it (migrate, config, status), feed it
(submit) and measure it (bench)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Coroutine
from typing import Any, TypeAlias

from tori_ingest import __version__
from tori_ingest.core import logs
from tori_ingest.core.errors import StartupError
from tori_ingest.core.settings import Settings, SettingsError, example_env, is_loopback
from tori_ingest.core.vocab import Extractor, Lane

# What add_subparsers() returns (argparse names it privately).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tori-ingest", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_args(sub)
    _operate_args(sub)
    _submit_args(sub)
    _bench_args(sub)
    _status_args(sub)
    return parser


def _serve_args(sub: Subparsers) -> None:
    """serve: the API and a worker in one process."""
    serve = sub.add_parser("serve", help="HTTP/WebSocket API and a worker in one process")
    serve.add_argument("--host", default=None, help="default $TORI_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default $PORT or 8000")
    serve.add_argument("--no-worker", action="store_true", help="run the API alone")
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="allow binding beyond loopback without TORI_API_TOKENS",
    )


def _operate_args(sub: Subparsers) -> None:
    """worker, migrate and config: run the service's parts, set it up, show its settings."""
    sub.add_parser(
        "worker",
        help="run a worker alone (no HTTP; probes and /metrics on TORI_METRICS_PORT if set)",
        description="Run jobs from the queue: more copies of this = more throughput.",
    )
    sub.add_parser(
        "migrate",
        help="apply database migrations (idempotent)",
        description="Create or upgrade the schema (ours and Procrastinate's); safe to run twice "
        "or from two copies at once. `serve` and `worker` do it at start with TORI_AUTO_MIGRATE.",
    )
    storage = sub.add_parser(
        "storage",
        help="copy the documents of a former store into the current one (after a switch)",
        description="After TORI_STORAGE_URL changed (e.g. a directory → a bucket): copy every "
        "live job's document from the former store into the current one, under the same "
        "keys. Documents already there are skipped, so it can run again.",
    )
    storage.add_argument("action", choices=["migrate"])
    storage.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="URL",
        help="the former store: file:///path/to/files or s3://bucket/prefix",
    )
    config = sub.add_parser(
        "config",
        help="print the effective settings (resolved, masked)",
        description="Every setting after the environment, defaults resolved, secrets masked.",
    )
    config.add_argument(
        "--example-env", action="store_true", help="print every setting with its default"
    )
    config.add_argument(
        "--openapi",
        action="store_true",
        help="print the API's OpenAPI document (what /openapi.json serves with auth on)",
    )


def _submit_args(sub: Subparsers) -> None:
    """submit: the HTTP client."""
    submit = sub.add_parser("submit", help="upload files or directories and follow them live")
    submit.add_argument("paths", nargs="+", metavar="PATH")
    submit.add_argument(
        "--url", default=None, help="service URL (default $TORI_URL or http://127.0.0.1:$PORT)"
    )
    submit.add_argument("--token", default=None, help="bearer token (default $TORI_TOKEN)")
    submit.add_argument(
        "--priority",
        choices=[str(lane) for lane in Lane],
        default=None,
        help="default interactive; bulk with --by-reference",
    )
    submit.add_argument(
        "--by-reference",
        action="store_true",
        help="submit paths under TORI_IMPORT_DIR, or a whole s3://bucket/prefix/ under "
        "TORI_IMPORT_URL, without uploading (back-fills)",
    )
    submit.add_argument("--password", default=None, help="password for encrypted PDFs")
    submit.add_argument("--concurrency", type=int, default=4, help="parallel uploads")
    submit.add_argument(
        "--save", default=None, metavar="DIR", help="write each succeeded job's result into DIR"
    )
    submit.add_argument(
        "--format",
        choices=["json", "text", "markdown"],
        default="json",
        help="what --save writes: the JSON result, the cleaned text, or Markdown (default json)",
    )


class _WithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, unless its help already says it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def _bench_args(sub: Subparsers) -> None:
    """bench: measurements on this machine (throughput; --quality, --storage, --ocr)."""
    bench = sub.add_parser(
        "bench",
        help="measure throughput, efficiency, latencies, queue overhead and memory on this machine",
        formatter_class=_WithDefaults,
        epilog="A quick run (about 2 minutes on 2 cores): tori-ingest bench --long-jobs 100 "
        "--samples 50. The full run (defaults) takes 10-20 minutes. --json prints the raw "
        "figures; otherwise a table marks each against its target.",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument(
        "--database-url", default=None, help="Postgres to measure on (default: embedded)"
    )
    bench.add_argument("--corpus", default=None, help="folder of PDFs (default: generated)")
    bench.add_argument("--model", default=None, help="default $TORI_SPACY_MODEL")
    bench.add_argument(
        "--extractor",
        choices=[str(e) for e in Extractor],
        default=None,
        help="text-layer reader of the bare pipeline and the service (default $TORI_EXTRACTOR)",
    )
    bench.add_argument("--pool-size", type=int, default=0, help="default $TORI_POOL_SIZE")
    bench.add_argument("--long-jobs", type=int, default=2000, help="jobs of the memory run")
    bench.add_argument("--samples", type=int, default=200, help="latency samples")
    bench.add_argument(
        "--quality",
        action="store_true",
        help="measure text quality instead (generated documents with known text)",
    )
    bench.add_argument(
        "--no-peers",
        action="store_true",
        help="--quality: leave out the peer (pymupdf4llm, run from its own venv .bench-peers/)",
    )
    bench.add_argument(
        "--storage",
        action="store_true",
        help="measure the store instead: upload MB/s into a directory vs a bucket, back-fill cost",
    )
    bench.add_argument(
        "--bucket", default=None, help="s3://bucket/prefix for --storage (default: moto_server)"
    )
    bench.add_argument(
        "--backfill", type=int, default=2000, help="objects of the --storage back-fill (0: skip)"
    )
    bench.add_argument(
        "--long",
        action="store_true",
        help="measure long documents instead: one alone on an idle service, split into parts "
        "or not (TORI_SPLIT_PAGES), on one copy and on two workers",
    )
    bench.add_argument(
        "--ocr",
        action="store_true",
        help="measure OCR instead: generated scans, and --corpus's former no_text PDFs",
    )


def _status_args(sub: Subparsers) -> None:
    """status: read the database."""
    status = sub.add_parser("status", help="one job, or job counts by state (reads the database)")
    status.add_argument("job_id", nargs="?")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load()
    except SettingsError as exc:
        print(f"tori-ingest: {exc}", file=sys.stderr)
        return 2
    if args.command == "config":
        if args.example_env:
            sys.stdout.write(example_env())
        elif args.openapi:
            from tori_ingest.http.app import api_document

            print(json.dumps(api_document(), indent=2))
        else:
            print(json.dumps(settings.public(), indent=2))
        return 0
    if args.command == "submit":
        return _submit(args, settings)
    if args.command == "bench":
        try:
            from tori_ingest.bench import run as bench
        except ImportError as exc:
            return _missing_extra("bench", exc)
        return bench.main(args)
    logs.setup(settings.tori_log_format, settings.tori_log_level)
    try:
        return _run(args, settings)
    except StartupError as exc:
        print(f"tori-ingest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from tori_ingest import service
    from tori_ingest.store import migrate
    from tori_ingest.store.db import database_url

    sock = None
    if args.command == "serve":
        host = args.host or settings.tori_host
        port = args.port if args.port is not None else settings.port
        if not _bind_allowed(host, settings, args.insecure):
            return 2
        try:
            sock = service.bind(host, port)
        except OSError as exc:
            print(
                f"tori-ingest: cannot listen on {host}:{port} ({exc.strerror}): "
                "pick another port with --port or PORT",
                file=sys.stderr,
            )
            return 2
        if not args.no_worker:
            _check_model(settings)
    elif args.command == "worker":
        if settings.tori_metrics_port and not _bind_allowed(settings.tori_host, settings, False):
            return 2
        _check_model(settings)

    url, embedded = database_url(settings)
    try:
        if args.command == "migrate":
            applied = asyncio.run(migrate.migrate_url(url))
            print("applied: " + ", ".join(applied) if applied else "database is up to date")
        elif args.command == "serve":
            run_loop(service.serve(settings, url, sock=sock, worker=not args.no_worker))
        elif args.command == "worker":
            run_loop(service.work(settings, url))
        elif args.command == "status":
            return asyncio.run(_status(url, args.job_id))
        elif args.command == "storage":
            return asyncio.run(_relocate(url, settings, args.source))
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _bind_allowed(host: str, settings: Settings, insecure: bool) -> bool:
    """Beyond loopback only with auth on, or when told something in front authenticates."""
    if is_loopback(host) or settings.api_tokens or insecure or settings.tori_insecure:
        return True
    print(
        f"tori-ingest: refusing to listen on {host} without auth: set TORI_API_TOKENS, "
        "or pass --insecure (TORI_INSECURE=1) if something in front of it authenticates",
        file=sys.stderr,
    )
    return False


def _check_model(settings: Settings) -> None:
    """Fail before starting anything when the configured spaCy model is not installed."""
    from tori_ingest.pipeline.nlp import resolve_model

    resolve_model(settings.tori_spacy_model)


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """The long-running commands use uvloop where it is installed (less CPU per request)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _missing_extra(extra: str, exc: ImportError) -> int:
    print(
        f"tori-ingest: this command needs the '{extra}' extra ({exc.name} is missing): "
        f"pip install 'tori-ingest[{extra}]'",
        file=sys.stderr,
    )
    return 2


def _submit(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from tori_ingest.client import command
    except ImportError as exc:
        return _missing_extra("client", exc)
    return command.main(args, settings)


async def _status(url: str, job_id: str | None) -> int:
    import uuid

    from tori_ingest.store import views
    from tori_ingest.store.db import close_pool, create_pool

    db = await create_pool(url, min_size=1, max_size=2)
    try:
        if job_id:
            try:
                row = await views.get(db, uuid.UUID(job_id))
            except ValueError:
                row = None
            if row is None:
                print(f"tori-ingest: no such job {job_id}", file=sys.stderr)
                return 1
            print(views.view(row).model_dump_json(indent=2))
            return 0
        print((await views.counts(db)).model_dump_json(indent=2))
        return 0
    finally:
        await close_pool(db)


async def _relocate(url: str, settings: Settings, source_url: str) -> int:
    from tori_ingest.store.backend import open_storage
    from tori_ingest.store.db import close_pool, create_pool
    from tori_ingest.store.relocate import relocate

    source = Settings.load({**os.environ, "TORI_STORAGE_URL": source_url})
    if source.tori_storage_url == settings.tori_storage_url:
        print("tori-ingest: --from names the current store (TORI_STORAGE_URL)", file=sys.stderr)
        return 2
    db = await create_pool(url, min_size=1, max_size=2)
    try:
        counts = await relocate(db, open_storage(source), open_storage(settings))
    finally:
        await close_pool(db)
    print(
        f"{counts['copied']} copied, {counts['present']} already there, "
        f"{counts['missing']} missing from {source_url}, {counts['corrupt']} not matching their key"
    )
    return 1 if counts["missing"] or counts["corrupt"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
