"""Locate the project's data folders (`sql/`, `config/`) in a checkout and in an installed wheel.

They live at the top of the repository; the wheel carries them inside the package.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def resource_dir(name: str) -> Path:
    packaged = _PACKAGE / name
    return packaged if packaged.is_dir() else _PACKAGE.parent / name
