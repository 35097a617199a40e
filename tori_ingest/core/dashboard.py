"""The shapes of the operator dashboard (`/ui`): its snapshot, its live batches, its login.

They are pydantic models like every other answer, so `/openapi.json` describes them and the
page's JavaScript reads fields that cannot silently drift from the server's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from tori_ingest.core.models import ErrorInfo, JobEvent, Model
from tori_ingest.core.vocab import Lane, Status

# The dashboard's chart: 60 buckets of this many seconds ("1h": a minute each).
RANGES = {"1h": 60, "10m": 10}
BUCKETS = 60
MAX_RUNNING = 50
MAX_FAILURES = 10
MAX_BATCH_EVENTS = 250  # jobs per live batch; beyond that the page re-reads the snapshot


class Viewer(Model):
    """Who the page shows data for: an admin sees every job, a token name its own."""

    name: str | None
    admin: bool
    auth: bool = Field(description="false: auth is off and everyone sees everything")


class Login(Model):
    """POST /ui/login: the token goes in the body, never in a URL."""

    token: str = Field(min_length=1, max_length=1024)


class Vocabulary(Model):
    """The words the page needs, from the enums (the JavaScript spells none of them)."""

    statuses: list[Status]
    lanes: list[Lane]
    running: Status = Status.RUNNING
    tones: dict[Status, str] = Field(description="a colour family per status")


class LaneQueue(Model):
    depth: int = Field(description="queued jobs (the same number as tori_queue_depth)")
    oldest_s: float = Field(description="age of the oldest queued job; 0 when none")


class Bucket(Model):
    """One slot of the chart: the jobs that ended in it, and the highest queue in it."""

    t: datetime
    succeeded: int
    failed: int
    pages: int = Field(description="pages of the jobs that succeeded in this slot")
    queued: dict[Lane, int] = Field(description="the most jobs waiting at once in this slot")


class Throughput(Model):
    bucket_s: int
    buckets: list[Bucket]
    pages_per_s: float = Field(description="over the last minute")
    jobs_per_min: float = Field(description="jobs that succeeded or failed, last minute")


class RunningJob(Model):
    job_id: str
    filename: str
    lane: Lane
    pages_done: int
    pages_total: int | None
    started_at: datetime | None
    attempts: int
    version: int
    copy_name: str | None = Field(description="the copy whose pool runs it (host:pid)")


class Failure(Model):
    job_id: str
    filename: str
    lane: Lane
    error: ErrorInfo
    finished_at: datetime | None
    attempts: int


class CopyStatus(Model):
    """A copy that runs a worker, as it last reported itself."""

    name: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_age_s: float
    stalled: bool
    processes: int = Field(description="processes in its pool")
    busy: int = Field(description="its jobs running now (the dashboard's Running list)")
    recycled: int = Field(description="pool processes replaced (recycling, crashes, kills)")
    running: int


class DashboardState(Model):
    """GET /ui/state: everything the page shows, read from Postgres (all copies agree)."""

    viewer: Viewer
    vocabulary: Vocabulary
    generated_at: datetime
    counts: dict[Status, dict[Lane, int]]
    queue: dict[Lane, LaneQueue]
    throughput: Throughput
    running: list[RunningJob]
    failures: list[Failure]
    copies: list[CopyStatus]


class StateQuery(Model):
    range: Literal["1h", "10m"] = "1h"


class DashboardBatch(Model):
    """On `/ws` after `{"dashboard": true}`: the newest state of each job that changed since
    the last batch (every job the viewer may see), at most a few per second."""

    type: Literal["dashboard"] = "dashboard"
    events: list[JobEvent]
    dropped: int = Field(0, description="changes left out (too many at once): re-read /ui/state")
    resync: bool = Field(False, description="events may have been missed: re-read /ui/state")
