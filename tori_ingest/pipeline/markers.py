"""What starts a list item: a bullet, a dash, or a number or letter with `.` or `)`.

Shared by the layout (list items), heading detection (a bulleted line is never a heading)
and table detection (a bullet, a gap and text is a list item, not a two-column row).
"""

from __future__ import annotations

import re

# bullet, white bullet, small squares, triangular and hyphen bullets, black and white circles
# and squares, hyphen-minus, en and em dash, asterisk, middle dot
BULLETS = "\u2022\u25e6\u25aa\u25ab\u2023\u2043\u25cf\u25cb\u25a0\u25a1\\-\u2013\u2014*\u00b7"
_NUMBER = r"\(?\d{1,3}[.)]|\(?[a-zA-Z][.)]|\(?[ivxIVX]{1,4}[.)]"
# A line that starts a list item: the marker, a space, then text.
LIST_ITEM = re.compile(rf"^(?:[{BULLETS}]|{_NUMBER})\s+\S")
# A piece of a line that is nothing but a marker.
MARKER_ONLY = re.compile(rf"^(?:[{BULLETS}]|{_NUMBER})$")
# A line that starts with a bullet (not a number: "2.1 Scope" may be a heading).
BULLETED = re.compile(rf"^[{BULLETS}]\s")
