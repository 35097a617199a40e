"""Images as documents in a real pool: a huge image fails `too_large` without exhausting memory."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import png_header_only, run_jobs, write
from tori_ingest.core.errors import JobError
from tori_ingest.core.vocab import ErrorCode


async def test_huge_image_fails_too_large_in_a_real_pool(tmp_path: Path) -> None:
    """Through pool processes with the address-space cap: a typed failure, never a crash."""
    bomb = write(tmp_path, "bomb.png", png_header_only(40_000, 40_000))
    wide = write(tmp_path, "wide.png", png_header_only(30_000, 3_000, color_type=2))
    bomb_out, wide_out, _ = await run_jobs([bomb, wide])
    for outcome in (bomb_out, wide_out):
        assert isinstance(outcome, JobError) and outcome.code is ErrorCode.TOO_LARGE, outcome
