-- A job's own OCR mode (the `ocr` form field or JSON key: auto | off | force); NULL: the
-- worker's TORI_OCR. Kept on the row so a retry or a re-queue runs with the same mode.
ALTER TABLE tori_jobs ADD COLUMN ocr text;
