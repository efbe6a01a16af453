"""Grid placement and stable panel ids: sections of lines of (panel, width, height), 24 units wide."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm


def place(
    board: db.Dashboard, sections: list[tuple[str, list[list[tuple[object, int, int]]]]]
) -> db.Dashboard:
    """Add each section as a row panel followed by its panels; widths in grid units (24 per line)."""
    y, ids = 0, 0
    for title, lines in sections:
        ids += 1
        board = board.with_row(db.Row(title).id(ids).grid_pos(dm.GridPos(h=1, w=24, x=0, y=y)))
        y += 1
        for line in lines:
            x = 0
            height = max(h for _, _, h in line)
            for panel, width, h in line:
                ids += 1
                board = board.with_panel(panel.id(ids).grid_pos(dm.GridPos(h=h, w=width, x=x, y=y)))
                x += width
            y += height
    return board
