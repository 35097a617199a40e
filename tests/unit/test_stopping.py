"""A dropped cancellation (Python 3.11's `asyncio.wait_for` race) never leaves a task running:
it once made `serve` hang for ever after SIGTERM, when the signal came as the worker opened its
connection pool."""

from __future__ import annotations

import asyncio

from tori_ingest.worker.supervise import asked_to_stop, cancel_and_wait, keep_running


async def test_a_task_that_ignored_its_cancellation_is_cancelled_again() -> None:
    ignored = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            ignored.set()  # as if the cancellation had been dropped
        await asyncio.sleep(3600)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task], patience=0.1), 10)
    assert ignored.is_set() and task.cancelled()


async def test_keep_running_starts_nothing_more_once_asked_to_stop() -> None:
    gate, starts, seen = asyncio.Event(), [], []

    async def run() -> None:
        starts.append(1)
        await asyncio.wait_for(gate.wait(), 10)  # the cancel lands as this completes
        seen.append(asked_to_stop())

    task = asyncio.create_task(keep_running("test", run))
    await asyncio.sleep(0.05)
    gate.set()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=10)
    assert done, "keep_running went on after it was cancelled"
    assert starts == [1]
    assert seen in ([], [True])  # [True]: the cancellation was dropped (Python 3.11)
