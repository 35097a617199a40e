"""Imported by the bench's forkserver: the bare pipeline's processes start with the slow
languages' tokenizers built, as the service's do, so efficiency compares like with like."""

from tori_ingest.pipeline import nlp

nlp.preload()
