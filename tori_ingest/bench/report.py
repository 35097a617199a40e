"""The bench's figures as a report: one table, nested figures flattened to dotted names,
numbers formatted, enum keys by their value, and each figure with a target marked against it.

The targets are the service's acceptance bars (efficiency ≥ 0.95, submit p99 ≤ 50 ms, push
p99 ≤ 20 ms, queue ratio ≤ 1.2, named stages ≥ 0.9 of the pool's CPU); `--json` prints the
raw figures instead.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any

# figure → (comparison, bar, how the bar reads)
TARGETS: dict[str, tuple[Callable[[float, float], bool], float, str]] = {
    "efficiency": (operator.ge, 0.95, "≥ 0.95"),
    "submit_p99_ms": (operator.le, 50.0, "≤ 50"),
    "push_p99_ms": (operator.le, 20.0, "≤ 20"),
    "queue_ratio": (operator.le, 1.2, "≤ 1.2"),
    "stage_cpu_share_of_pool_cpu": (operator.ge, 0.9, "≥ 0.9"),
}


def table(figures: dict[str, Any]) -> str:
    """Aligned `figure  value  target` lines; a met target reads `ok`, a missed one `MISSED`."""
    rows = list(_flatten(figures))
    width = max((len(name) for name, _ in rows), default=0)
    lines = []
    for name, value in rows:
        line = f"{name:<{width}}  {_format(value)}"
        if name in TARGETS and isinstance(value, int | float):
            compare, bar, reads = TARGETS[name]
            line += f"   target {reads}: {'ok' if compare(value, bar) else 'MISSED'}"
        lines.append(line)
    return "\n".join(lines)


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            name = key.value if isinstance(key, Enum) else str(key)
            yield from _flatten(inner, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix, value


def _format(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(_format(v) for v in value)
    return str(value)
