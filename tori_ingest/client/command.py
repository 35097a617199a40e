"""`tori-ingest submit` as a command: arguments in, one clear line for every problem, a summary
and an exit status out (0 all succeeded, 1 some failed or were refused, 2 nothing to do)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import httpx
import websockets
from obstore.exceptions import BaseError as ObstoreError
from rich.console import Console

from tori_ingest.client import backfill, submit
from tori_ingest.core.settings import Settings
from tori_ingest.core.vocab import Status


def fail(message: str) -> int:
    print(f"tori-ingest: {message}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace, settings: Settings) -> int:
    url = (args.url or os.environ.get("TORI_URL") or f"http://127.0.0.1:{settings.port}").rstrip(
        "/"
    )
    token = args.token or os.environ.get("TORI_TOKEN")
    if any(backfill.is_prefix(p) for p in args.paths):
        return _backfill(args, url, token)
    try:
        paths, skipped = submit.collect(args.paths)
    except FileNotFoundError as exc:
        return fail(str(exc))
    for path in skipped:
        print(f"skipped {path}: not a PDF or a PNG/JPEG/TIFF image", file=sys.stderr)
    if not paths:
        return fail(
            f"no PDF found in {', '.join(args.paths)} "
            "(directories are searched for PDFs and PNG/JPEG/TIFF images)"
        )
    references = None
    if args.by_reference:
        if settings.tori_import_dir is None:
            return fail("--by-reference needs TORI_IMPORT_DIR (the tree the service reads)")
        try:
            references = submit.relative_to_import(paths, settings.tori_import_dir)
        except ValueError as exc:
            return fail(f"not under TORI_IMPORT_DIR: {exc}")
    if (unreachable := _unreachable(url)) is not None:
        return unreachable
    if args.save:
        try:
            Path(args.save).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return fail(f"--save {args.save}: {exc.strerror or exc}")
    try:
        items = asyncio.run(
            submit.submit(
                paths,
                url=url,
                token=token,
                priority=args.priority,
                password=args.password,
                concurrency=max(1, args.concurrency),
                references=references,
                save=Path(args.save) if args.save else None,
                result_format=args.format,
            )
        )
    except (httpx.TransportError, OSError, websockets.InvalidHandshake) as exc:
        return fail(f"lost the service at {url} ({_reason(exc)}); jobs already submitted go on")
    console = Console(width=max(Console().width, 160))  # ids and paths are never cut
    console.print(submit.summary(items))
    counts = Counter(item.status for item in items)
    console.print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    return 0 if counts[Status.SUCCEEDED] == len(items) else 1


def _backfill(args: argparse.Namespace, url: str, token: str | None) -> int:
    """A bucket prefix: list it in pages, enqueue in batches, report counts (no following)."""
    if not args.by_reference or len(args.paths) != 1:
        return fail("an s3:// prefix is submitted alone, with --by-reference (a back-fill)")
    if (unreachable := _unreachable(url)) is not None:
        return unreachable
    console = Console()
    try:
        counts = asyncio.run(
            backfill.submit_prefix(
                args.paths[0],
                url=url,
                token=token,
                priority=args.priority,
                password=args.password,
                concurrency=max(1, args.concurrency),
                console=console,
            )
        )
    except (httpx.TransportError, OSError, ObstoreError, backfill.Stopped, ExceptionGroup) as exc:
        first = exc.exceptions[0] if isinstance(exc, ExceptionGroup) else exc
        return fail(f"back-fill stopped ({_reason(first)}); run it again to resume")
    refused = {k.split(":", 1)[1] or "unknown": n for k, n in counts.items() if ":" in k}
    console.print(
        f"{counts['listed']} objects listed, {counts['accepted']} accepted "
        f"({counts['replayed']} already submitted), {counts['refused']} refused"
        + (f": {refused}" if refused else "")
    )
    console.print("follow them with `tori-ingest status` or the dashboard (/ui)")
    return 1 if counts["refused"] else 0


def _unreachable(url: str) -> int | None:
    """Exit status 2 with one line when the service does not answer (before any progress bar)."""
    try:
        httpx.get(f"{url}/healthz", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        return fail(f"cannot reach the service at {url} ({_reason(exc)}): is `tori-ingest serve` "
                    "running? (--url or TORI_URL)")  # fmt: skip
    return None


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
