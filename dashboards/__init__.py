"""Shepherd's Grafana boards, built from code (``python -m dashboards.build`` writes the JSON).

``queries()`` lists every panel query with the template variables substituted, so a test can run
them against a real Prometheus::

    import dashboards
    for q in dashboards.queries():
        prometheus.query(q.expr)   # q.board, q.panel, q.ref_id, q.needs say where it comes from
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .build import Query


def queries(variables: dict[str, str] | None = None) -> list[Query]:
    """Every panel and annotation query of every board (see ``dashboards.build.queries``)."""
    from .build import queries as _queries  # lazy: keeps `python -m dashboards.build` clean

    return _queries(variables)
