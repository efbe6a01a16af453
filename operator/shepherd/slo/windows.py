"""Multiwindow, multi-burn-rate windows as data, scaled to any SLO window.

The table is the SRE workbook's (chapter 5, "Alerting on SLOs") for a 30-day SLO:

    severity  burn rate  long window  short window  for
    critical  14.4       1h           5m            2m     (2 % of the budget in 1 h)
    critical  6          6h           30m           15m    (5 % of the budget in 6 h)
    warning   3          1d           2h            1h     (10 % of the budget in 1 d)
    warning   1          3d           6h            3h     (10 % of the budget in 3 d)

An alert fires when both the long and the short window burn faster than the factor; the short
window makes it reset quickly once the problem stops. The workbook has no ``for``; a small one
(taken from Pyrra's table) damps a single bad evaluation.

Every duration is scaled by ``slo_window / 30d`` so that a 10m or 1h SLO (used in tests) keeps
the same proportions and the same "percent of budget burned before a page" as a 30d one. Scaled
windows are rounded to whole seconds and never go below ``4 x scrape_interval``: ``rate()`` needs
at least two samples, and four survive one missed scrape. When windows hit that floor the
proportions are no longer exact (documented in ``SLOWindows.clamped``).

Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

Severity = Literal["critical", "warning", "info"]

BASE_SLO_WINDOW = timedelta(days=30)
RESOLUTION = timedelta(seconds=1)
#: ``rate()`` needs two samples in a window; four tolerate one missed scrape.
MIN_SAMPLES_PER_WINDOW = 4
DEFAULT_SCRAPE_INTERVAL = timedelta(seconds=15)


@dataclass(frozen=True)
class BurnRateWindow:
    """One row of the burn-rate table: alert when both windows burn faster than ``factor``."""

    severity: Severity
    factor: float
    long: timedelta
    short: timedelta
    for_: timedelta

    def exhaustion(self, slo_window: timedelta) -> timedelta:
        """How long a full budget lasts at this burn rate (Pyrra's ``exhaustion`` label)."""
        return _round(slo_window / self.factor)


#: The SRE workbook table for a 30d SLO (see the module docstring).
SRE_WORKBOOK_30D: tuple[BurnRateWindow, ...] = (
    BurnRateWindow("critical", 14.4, timedelta(hours=1), timedelta(minutes=5), timedelta(minutes=2)),
    BurnRateWindow("critical", 6.0, timedelta(hours=6), timedelta(minutes=30), timedelta(minutes=15)),
    BurnRateWindow("warning", 3.0, timedelta(days=1), timedelta(hours=2), timedelta(hours=1)),
    BurnRateWindow("warning", 1.0, timedelta(days=3), timedelta(hours=6), timedelta(hours=3)),
)

#: Resolution of the request-weighted full-window SLI at 30d: the full-window ratio is
#: ``sum_over_time`` of rates over this window (8640 steps in 30 days).
BUDGET_STEP_30D = timedelta(minutes=5)
#: How long an SLO may have no SLI series at all before ``ShepherdSLONoData`` fires, at 30d.
NO_DATA_FOR_30D = timedelta(minutes=10)


@dataclass(frozen=True)
class SLOWindows:
    """All windows the rules of one SLO window need, already scaled and rounded."""

    slo_window: timedelta
    burn: tuple[BurnRateWindow, ...]
    budget_step: timedelta
    no_data_for: timedelta
    #: True when at least one window was raised to the ``4 x scrape_interval`` floor.
    clamped: bool

    @property
    def rate_windows(self) -> tuple[timedelta, ...]:
        """Every window a ``shepherd:sli_*:rate<window>`` recording rule is needed for, ascending."""
        windows = {w for b in self.burn for w in (b.long, b.short)} | {self.budget_step}
        return tuple(sorted(windows))

    @property
    def burn_windows(self) -> tuple[timedelta, ...]:
        """The long and short windows of the burn table, ascending (burn-rate recording rules)."""
        return tuple(sorted({w for b in self.burn for w in (b.long, b.short)}))

    @property
    def no_data_window(self) -> timedelta:
        """The range of the ``rate()`` whose absence means "no data": the shortest burn window."""
        return min(self.burn_windows)


_UNITS: tuple[tuple[str, timedelta], ...] = (
    ("y", timedelta(days=365)),
    ("w", timedelta(weeks=1)),
    ("d", timedelta(days=1)),
    ("h", timedelta(hours=1)),
    ("m", timedelta(minutes=1)),
    ("s", timedelta(seconds=1)),
    ("ms", timedelta(milliseconds=1)),
)
_DURATION_RE = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration (``30d``, ``1h30m``, ``90s``) into a timedelta.

    Raises ValueError for anything Prometheus would reject, and for zero.
    """
    match = _DURATION_RE.match(text.strip()) if text else None
    if not match or not any(match.groups()):
        raise ValueError(f"not a Prometheus duration: {text!r}")
    total = timedelta()
    for (_, unit), value in zip(_UNITS, match.groups(), strict=True):
        if value:
            total += int(value) * unit
    if total <= timedelta():
        raise ValueError(f"duration must be positive: {text!r}")
    return total


def format_duration(value: timedelta) -> str:
    """Render a timedelta as a canonical Prometheus duration using d, h, m, s (and ms).

    Weeks and years are not used so that ``30d`` stays ``30d``. Zero renders as ``0s``.
    """
    if value < timedelta():
        raise ValueError(f"negative duration: {value}")
    if value == timedelta():
        return "0s"
    parts = []
    rest = value
    for unit, size in _UNITS[2:]:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    if rest:
        raise ValueError(f"duration finer than 1ms: {value}")
    return "".join(parts)


def _round(value: timedelta, resolution: timedelta = RESOLUTION) -> timedelta:
    """Round half up to a multiple of ``resolution``."""
    steps = int(value / resolution + 0.5)
    return steps * resolution


def scale_windows(
    slo_window: timedelta,
    *,
    scrape_interval: timedelta = DEFAULT_SCRAPE_INTERVAL,
    table: tuple[BurnRateWindow, ...] = SRE_WORKBOOK_30D,
    base: timedelta = BASE_SLO_WINDOW,
) -> SLOWindows:
    """Scale the burn-rate table (defined for ``base``) to ``slo_window``.

    Windows are rounded to whole seconds and floored at ``4 x scrape_interval``; ``for`` durations
    are rounded but not floored (``0s`` is valid and means "at the next evaluation"). The short
    window never exceeds the long one.
    """
    if slo_window <= timedelta() or scrape_interval <= timedelta():
        raise ValueError("slo_window and scrape_interval must be positive")
    floor = _round(MIN_SAMPLES_PER_WINDOW * scrape_interval)
    if slo_window < floor:
        raise ValueError(
            f"SLO window {format_duration(_round(slo_window))} is shorter than "
            f"{MIN_SAMPLES_PER_WINDOW} scrape intervals ({format_duration(floor)})"
        )
    ratio = slo_window / base
    clamped = False

    def window(value: timedelta) -> timedelta:
        nonlocal clamped
        scaled = _round(value * ratio)
        if scaled < floor:
            clamped = True
            return floor
        return scaled

    burn = []
    for row in table:
        long = window(row.long)
        short = min(window(row.short), long)
        burn.append(BurnRateWindow(row.severity, row.factor, long, short, _round(row.for_ * ratio)))
    return SLOWindows(
        slo_window=slo_window,
        burn=tuple(burn),
        budget_step=window(BUDGET_STEP_30D),
        no_data_for=_round(NO_DATA_FOR_30D * ratio),
        clamped=clamped,
    )
