"""The shape of the code, checked: one vocabulary, small modules, settings described once."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers import ROOT
from tori_ingest.core.settings import Settings, example_env
from tori_ingest.core.vocab import ErrorCode, Lane, Status

PACKAGE = ROOT / "tori_ingest"
VOCAB = PACKAGE / "core" / "vocab.py"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 100


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _dict_keys(tree: ast.AST) -> set[int]:
    """ids of string constants used as dict keys (field names, not vocabulary)."""
    return {id(k) for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys}


def test_codes_lanes_and_statuses_are_written_once() -> None:
    words = {str(v) for v in (*ErrorCode, *Lane, *Status)}
    found = []
    for path in _modules():
        if path == VOCAB:
            continue
        tree = ast.parse(path.read_text())
        keys = _dict_keys(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            quoted = [w for w in words if f"'{w}'" in node.value]  # SQL literals
            if (node.value in words and id(node) not in keys) or quoted:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value[:40]!r}")
    assert found == [], "use the enums of tori_ingest.core.vocab:\n" + "\n".join(found)


def test_modules_and_functions_stay_small() -> None:
    too_big = []
    for path in _modules():
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_big.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length}")
    assert too_big == []


def test_error_codes_carry_statuses() -> None:
    assert {str(c) for c in ErrorCode if c.job} == {
        "not_a_pdf", "empty_file", "too_large", "encrypted", "bad_password", "corrupt_pdf",
        "too_many_pages", "timeout", "worker_crashed", "no_text", "cancelled", "internal",
    }  # fmt: skip
    assert ErrorCode.NOT_A_PDF.http_status == 415
    assert ErrorCode.UNAVAILABLE.http_status == 503 and ErrorCode.UNAVAILABLE.retryable
    assert all(400 <= c.http_status < 600 for c in ErrorCode)


def test_example_env_is_generated_from_the_settings() -> None:
    assert (ROOT / "config" / "example.env").read_text() == example_env()


def test_readme_lists_every_setting_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = {
        m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)`[^|]*\| ([^|]*)\|", readme, re.M)
    }
    for name, field in Settings.model_fields.items():
        if name == "tori_test_hooks":
            continue
        assert name.upper() in rows, f"{name.upper()} is missing from the README settings table"
        default = field.default
        if isinstance(default, int | str) and not isinstance(default, bool) and default != "":
            assert str(default) in rows[name.upper()], (name, rows[name.upper()])


_SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT INTO|UPDATE \w+ SET|DELETE FROM|TRUNCATE|CREATE \w+)\b|^SELECT\b",
    re.S,
)


def test_sql_lives_in_store() -> None:
    """Statements live in `store/` (and `sql/`); the benchmark, which builds its own tables'
    fixtures, is the one other place."""
    found = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).parts
        if rel[0] in ("store", "bench"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if _SQL.search(node.value.strip()):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value[:50]!r}")
    assert found == [], "SQL outside store/:\n" + "\n".join(found)
