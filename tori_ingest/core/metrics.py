"""Prometheus metrics (`tori_*`), defined once for every kind of process.

Per-process counters (requests, outcomes, pages) are summed by Prometheus across copies; the
state of the whole system (jobs by state, queue depth per lane) is read from Postgres at
scrape time (`http.metrics`), so every copy reports the same truth.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "tori_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "tori_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOBS_CREATED = Counter("tori_jobs_created_total", "Jobs created", ["lane", "deduplicated"])
JOBS_FINISHED = Counter(
    "tori_jobs_finished_total", "Jobs ended by this worker", ["status", "error_code"]
)
JOB_DURATION = Histogram(
    "tori_job_duration_seconds",
    "Time from start to end of a job's attempt",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
QUEUE_WAIT = Histogram(
    "tori_job_queue_wait_seconds",
    "Time from submission to start",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600),
)
STAGE_CPU = Counter(
    "tori_stage_cpu_seconds_total",
    "CPU seconds of succeeded jobs per stage (pool: extract, ocr, clean, nlp, assemble; worker: "
    "assemble, store)",
    ["stage"],
)
PAGES = Counter("tori_pages_processed_total", "Pages of succeeded jobs")
POOL_SIZE = Gauge("tori_pool_processes", "Pool processes configured in this worker")
POOL_STARTS = Counter("tori_pool_process_starts_total", "Pool processes started (incl. recycled)")
JOBS_BY_STATE = Gauge("tori_jobs", "Jobs by state and lane (whole system)", ["status", "lane"])
QUEUE_DEPTH = Gauge("tori_queue_depth", "Jobs waiting to run, by lane (whole system)", ["lane"])
WEBHOOK_ATTEMPTS = Counter(
    "tori_webhook_attempts_total",
    "Webhook tries by outcome (delivered, rejected = non-2xx, error = no answer, refused)",
    ["outcome"],
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "tori_webhook_attempt_duration_seconds",
    "Time of one webhook try",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBHOOK_LATENCY = Histogram(
    "tori_webhook_delivery_latency_seconds",
    "From a job's terminal state to its webhook's 2xx, retries included",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60, 300, 3600, 6 * 3600, 24 * 3600),
)
WEBHOOK_DELIVERIES = Gauge(
    "tori_webhook_deliveries", "Webhook deliveries by state (whole system)", ["state"]
)
QUEUE_OLDEST = Gauge(
    "tori_queue_oldest_seconds",
    "Age of the oldest queued job, by lane; 0 when none (whole system)",
    ["lane"],
)
COPIES = Gauge(
    "tori_copies",
    "Copies running a worker: live, or stalled (no report within their stall threshold)",
    ["state"],
)
READY = Gauge("tori_ready", "1 when this process would answer /readyz with 200, else 0")
