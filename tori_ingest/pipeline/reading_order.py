"""Reading order of a page's blocks: a recursive XY cut.

A region is cut where whitespace runs through it from edge to edge. A vertical gutter (columns)
is cut first, left before right; otherwise the widest horizontal gap, top before bottom. So
columns read top to bottom, left column first, and a full-width title or heading above the
columns (no gutter runs through it) comes first. A region with no clean cut reads top to
bottom, then left to right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
Box = tuple[float, float, float, float]

MIN_GUTTER = 8.0  # points: narrower whitespace between blocks is not a column gutter


def reading_order(items: Sequence[T], box: Callable[[T], Box]) -> list[T]:
    """`items` in reading order; `box(item)` is its (x0, y0, x1, y1), y growing downwards."""
    boxes = [box(item) for item in items]  # worked out once: the cut asks many times
    out: list[int] = []
    stack: list[list[int]] = [list(range(len(items)))]
    while stack:
        region = stack.pop()
        parts = _cut(region, boxes.__getitem__)
        if parts is None:
            out.extend(sorted(region, key=lambda i: (boxes[i][1], boxes[i][0])))
        else:
            stack.extend(reversed(parts))
    return [items[i] for i in out]


def _cut(region: list[int], box: Callable[[int], Box]) -> list[list[int]] | None:
    if len(region) < 2:
        return None
    x_at, x_gap = _widest_gap([(box(i)[0], box(i)[2]) for i in region])
    if x_gap >= MIN_GUTTER:
        return _split(region, lambda i: box(i)[0] < x_at)
    y_at, y_gap = _widest_gap([(box(i)[1], box(i)[3]) for i in region])
    if y_gap > 0:
        return _split(region, lambda i: box(i)[1] < y_at)
    return None


def _widest_gap(spans: list[tuple[float, float]]) -> tuple[float, float]:
    """(where, width) of the widest stretch no span covers, between the first and last."""
    best_at, best = 0.0, 0.0
    spans.sort()
    reach = spans[0][1]
    for start, end in spans[1:]:
        if start - reach > best:
            best_at, best = (start + reach) / 2, start - reach
        reach = max(reach, end)
    return best_at, best


def _split(region: list[int], first: Callable[[int], bool]) -> list[list[int]]:
    head = [item for item in region if first(item)]
    tail = [item for item in region if not first(item)]
    return [head, tail]
