"""Operations files: the Procfile and the example env."""

from __future__ import annotations

import re

from tests.helpers import ROOT
from tori_ingest.core.settings import Settings

# --- deploy files ----------------------------------------------------------------------------


def test_procfile_is_as_specified() -> None:
    lines = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines())
    assert lines["web"].startswith("tori-ingest serve") and "--port $PORT" in lines["web"]
    assert lines["worker"] == "tori-ingest worker"
    assert lines["release"] == "tori-ingest migrate"


def test_example_env_documents_every_setting() -> None:
    names = {name.upper() for name in Settings.model_fields}  # config/defaults.toml is gone
    example = (ROOT / "config" / "example.env").read_text()
    documented = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert names == documented
