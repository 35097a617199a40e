"""Imported only inside the pool's forkserver process (multiprocessing preload).

Pool processes are forked from it, so it pre-imports the pipeline (spaCy, and tesserocr,
pypdfium2 and Pillow for OCR) and builds the slow languages' tokenizers once, and it must
outlive a platform-wide SIGTERM: if the forkserver died, multiprocessing would report every
pool process as dead (exit code 255) and in-flight jobs would fail as `worker_crashed`
instead of finishing within the grace period. The parent stops it by exiting.
"""

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)

import tori_ingest.pipeline.process  # noqa: E402, F401  (the preload itself)
from tori_ingest.pipeline import nlp  # noqa: E402

nlp.preload()  # French's tokenizer: 2.7 s once here instead of in every pool process
