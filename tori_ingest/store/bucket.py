"""The store as an S3-compatible bucket (AWS, MinIO, R2, Ceph…), for machines sharing no disk.

Why obstore: one async API (Rust `object_store`) for S3 today and GCS/Azure later, streaming
multipart uploads that abort themselves when the source fails, presigned URLs, paged
listings, and the standard `AWS_*` variables — without botocore's weight.

Uploads stream through a bounded queue into `put_async`: a small document is one PUT, a
large one a multipart upload of `PART_BYTES` parts; either way memory per upload stays
under `SMALL_BYTES + QUEUE_CHUNKS * chunk + PART_CONCURRENCY * PART_BYTES`. Any failure of
the bucket surfaces as `StorageUnavailable` (transient: 503, job retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiofiles
import aiofiles.os
import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from tori_ingest.core.errors import StorageUnavailable
from tori_ingest.store.backend import (
    TEMP_MAX_AGE_S,
    TEMP_PREFIX,
    Storage,
    TempWriter,
    key_for,
    new_temp,
)

if TYPE_CHECKING:
    from tori_ingest.core.settings import Settings

SMALL_BYTES = 5 * 1024 * 1024  # below this a document is one PUT (S3's smallest part)
HELD_BUDGET = 64 * 1024 * 1024  # small documents kept in memory until their jobs are in
PART_BYTES = 8 * 1024 * 1024
PART_CONCURRENCY = 2
QUEUE_CHUNKS = 16
READ_CHUNK = 1024 * 1024
PROBE_KEY = f"{TEMP_PREFIX}.probe"
# What a presigned GET of an object answers with: a download, never a page the bucket's origin
# renders (an uploaded HTML/PDF polyglot). One object serves every job with the same bytes, so
# no per-job file name here; `GET /jobs/{id}/file` through the API names it.
DOWNLOAD_ATTRIBUTES: dict[str, str] = {
    "Content-Type": "application/octet-stream",
    "Content-Disposition": "attachment",
}


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Bucket failures become StorageUnavailable; a missing object stays FileNotFoundError."""
    try:
        yield
    except FileNotFoundError:
        raise
    except (BaseError, OSError) as exc:
        raise StorageUnavailable(exc) from exc


def connect(url: str, settings: Settings) -> S3Store:
    """An S3Store for `s3://bucket/prefix`, configured by the AWS_* settings (the rest of
    the standard AWS variables, e.g. AWS_SESSION_TOKEN, are read from the environment)."""
    config: dict[str, Any] = {}
    if settings.aws_access_key_id:
        config["access_key_id"] = settings.aws_access_key_id
    if settings.aws_secret_access_key:
        config["secret_access_key"] = settings.aws_secret_access_key.get_secret_value()
    if settings.aws_region:
        config["region"] = settings.aws_region
    if settings.aws_endpoint_url:
        config["endpoint"] = settings.aws_endpoint_url
    return S3Store.from_url(
        url,
        config=config,  # type: ignore[arg-type]
        client_options={
            "allow_http": settings.aws_allow_http,
            "connect_timeout": timedelta(seconds=5),
            "timeout": timedelta(minutes=5),
        },
        retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=5)},
    )


class BucketStorage(Storage):
    kind = "bucket"

    def __init__(self, url: str, settings: Settings) -> None:
        self.store = connect(url, settings)
        self.location = url
        self.fetch_dir = settings.tori_data_dir / "fetch"
        self.fetch_dir.mkdir(parents=True, exist_ok=True)
        self.held: dict[str, bytes] = {}  # temp name -> bytes never sent to the bucket
        self.held_bytes = 0

    def writer(self) -> TempWriter:
        return BucketWriter(new_temp(), self)

    def hold(self, temp: str, data: bytes) -> bool:
        """Keep a small document in memory instead of a temp object, within the budget: its
        commit is then one HEAD + one PUT, not PUT + HEAD + COPY + DELETE."""
        if self.held_bytes + len(data) > HELD_BUDGET:
            return False
        self.held[temp] = data
        self.held_bytes += len(data)
        return True

    def _release(self, temp: str) -> None:
        data = self.held.pop(temp, None)
        if data is not None:
            self.held_bytes -= len(data)

    async def _put(self, key: str, data: bytes) -> None:
        with guarded():
            await obstore.put_async(self.store, key, data, attributes=DOWNLOAD_ATTRIBUTES)

    async def _exists(self, key: str) -> bool:
        with guarded():
            try:
                await obstore.head_async(self.store, key)
            except FileNotFoundError:
                return False
        return True

    async def _copy(self, source: str, key: str) -> None:
        with guarded():
            await obstore.copy_async(self.store, source, key)

    async def commit(self, temp: str, sha256: str) -> tuple[str, bool]:
        key = key_for(sha256)
        if await self._exists(key):
            return key, False
        if temp in self.held:
            await self._put(key, self.held[temp])
        else:  # server-side: the bytes do not pass through us again
            await self._copy(temp, key)
        await self.discard(temp)
        return key, True

    async def restore(self, key: str, temp: str) -> None:
        if await self._exists(key):
            return
        if temp in self.held:
            await self._put(key, self.held[temp])
        elif await self._exists(temp):
            await self._copy(temp, key)

    async def discard(self, temp: str) -> None:
        if temp in self.held:
            self._release(temp)
            return
        with contextlib.suppress(BaseError, OSError):  # the sweep gets it later
            await obstore.delete_async(self.store, temp)

    async def remove(self, key: str) -> None:
        with guarded():
            with contextlib.suppress(FileNotFoundError):
                await obstore.delete_async(self.store, key)

    @contextlib.asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        """Fetched to a temp file of this machine, deleted when done (or failed)."""
        fd, name = tempfile.mkstemp(suffix=".fetch", dir=self.fetch_dir)
        os.close(fd)
        path = Path(name)
        try:
            with guarded():
                async with aiofiles.open(path, "wb") as out:
                    async for chunk in self.read(key):
                        await out.write(chunk)
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                await aiofiles.os.remove(path)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        with guarded():
            result = await obstore.get_async(self.store, key)
            async for chunk in result.stream(min_chunk_size=READ_CHUNK):
                yield bytes(chunk)

    async def size(self, key: str) -> int:
        with guarded():
            return (await obstore.head_async(self.store, key))["size"]

    async def presigned_url(self, key: str, ttl: timedelta) -> str | None:
        with guarded():
            return await obstore.sign_async(self.store, "GET", key, ttl)

    async def problem(self) -> str | None:
        """A HEAD of a key that need not exist: any answer from the bucket means it is there."""
        try:
            async with asyncio.timeout(3):
                await self._exists(PROBE_KEY)
        except (StorageUnavailable, TimeoutError) as exc:
            reason = exc.message if isinstance(exc, StorageUnavailable) else "timed out"
            return f"storage unreachable (bucket {self.location}: {reason})"
        return None

    async def sweep_temp(self, max_age_s: float = TEMP_MAX_AGE_S) -> int:
        cutoff = datetime.now(UTC) - timedelta(seconds=max_age_s)
        removed = 0
        with guarded():
            async for batch in obstore.list(self.store, prefix=TEMP_PREFIX, chunk_size=1000):
                stale = [m["path"] for m in batch if m["last_modified"] < cutoff]
                if stale:
                    await obstore.delete_async(self.store, stale)
                    removed += len(stale)
        return removed


class BucketWriter(TempWriter):
    """Small documents buffer and PUT once; larger ones feed a multipart upload as they come.

    A failed or discarded upload ends its chunk stream with an error, which makes `put_async`
    abort the multipart upload: no parts are left behind in the bucket.
    """

    def __init__(self, temp: str, storage: BucketStorage) -> None:
        super().__init__(temp)
        self._storage = storage
        self._store = storage.store
        self._small: list[bytes] = []
        self._small_size = 0
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(QUEUE_CHUNKS)
        self._task: asyncio.Task[Any] | None = None
        self._stored = False

    async def _write(self, chunk: bytes) -> None:
        if self._task is None:
            if self._small_size + len(chunk) <= SMALL_BYTES:
                self._small.append(chunk)
                self._small_size += len(chunk)
                return
            self._task = asyncio.create_task(self._upload(self._small))
            self._task.add_done_callback(self._unblock)
            self._small, self._small_size = [], 0
        if self._task.done():
            await self._settle()
        await self._queue.put(chunk)

    async def _upload(self, first: list[bytes]) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for chunk in first:
                yield chunk
            while (item := await self._queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item

        await obstore.put_async(
            self._store,
            self.temp,
            chunks(),
            attributes=DOWNLOAD_ATTRIBUTES,  # a server-side copy to the final key keeps them
            chunk_size=PART_BYTES,
            max_concurrency=PART_CONCURRENCY,
        )

    def _unblock(self, _: asyncio.Task[Any]) -> None:
        """A dead upload drains its queue, so a writer blocked on a full queue wakes up."""
        while not self._queue.empty():
            self._queue.get_nowait()

    async def _settle(self) -> None:
        assert self._task is not None
        with guarded():
            await self._task
        raise StorageUnavailable(ConnectionError("the upload to the bucket ended early"))

    async def close(self) -> None:
        if self._stored:
            return
        with guarded():
            if self._task is None:
                data = b"".join(self._small)
                self._small = []
                if not self._storage.hold(self.temp, data):
                    await obstore.put_async(
                        self._store, self.temp, data, attributes=DOWNLOAD_ATTRIBUTES
                    )
            else:
                if not self._task.done():
                    await self._queue.put(None)
                await self._task
        self._stored = True

    async def discard(self) -> None:
        self._small = []
        if self._task is not None and not self._task.done():
            self._unblock(self._task)  # make room: the error is the next thing it reads
            self._queue.put_nowait(ConnectionAbortedError("upload discarded"))
            with contextlib.suppress(BaseError, OSError, ConnectionError):
                await self._task
        if self._stored or self._task is not None:
            await self._storage.discard(self.temp)
