"""The cells of ``report.html``'s actions table, and what a person should never have to read in
them: Python reprs (``{'detector': ...``) and floats printed to every digit."""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: a dict or list repr, a quoted key, or a float with 5 or more decimals (0.011458333333333333)
RAW = re.compile(r"[{}\[\]]|'\w+':|\d\.\d{5,}")


class _Rows(HTMLParser):
    """Rows (lists of cell texts) of the table that follows the 'Actions' heading."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_actions = self._heading = False
        self._depth = 0  # table nesting: evidence cells hold a small table
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self._heading = True
        elif tag == "table" and self._in_actions:
            self._depth += 1
        elif tag == "tr" and self._in_actions and self._depth == 1:
            self.rows.append([])
        elif tag == "td" and self._in_actions and self._depth == 1:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "h2":
            self._heading = False
        elif tag == "table" and self._in_actions:
            self._depth -= 1
            if self._depth == 0:
                self._in_actions = False
        elif tag == "td" and self._depth == 1 and self._cell is not None:
            self.rows[-1].append(" ".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._heading:
            self._in_actions = data.startswith("Actions")
        elif self._cell is not None:
            self._cell.append(data.strip())


def action_rows(page: str) -> list[list[str]]:
    """The actions table's rows: event time, run, action, version, reason, evidence."""
    parser = _Rows()
    parser.feed(page)
    return [r for r in parser.rows if r]


def raw_reprs(page: str) -> list[str]:
    """The evidence and version cells that hold a raw repr or an unrounded float."""
    return [cell for row in action_rows(page) for cell in (row[3], row[5]) if RAW.search(cell)]
