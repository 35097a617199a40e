"""tori-ingest: asynchronous PDF ingestion (upload → extract → clean → annotate → live status)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tori-ingest")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
