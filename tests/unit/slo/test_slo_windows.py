"""Burn-rate windows: the SRE-workbook table as data, scaled to any SLO window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from shepherd.slo.windows import (
    SRE_WORKBOOK_30D,
    format_duration,
    parse_duration,
    scale_windows,
)

S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", 30 * D),
        ("1w", 7 * D),
        ("1h30m", 90 * M),
        ("90s", 90 * S),
        ("1m10s", 70 * S),
        ("250ms", timedelta(milliseconds=250)),
        ("1y", 365 * D),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "1.5h", "-1m", "0s", "1m1h", "30 d"])
def test_parse_duration_rejects_what_prometheus_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (30 * D, "30d"),
        (7 * D, "7d"),  # not 1w: windows read the same as the CRD's
        (2 * D + 2 * H, "2d2h"),
        (70 * S, "1m10s"),
        (timedelta(), "0s"),
        (timedelta(milliseconds=1500), "1s500ms"),
    ],
)
def test_format_duration(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected
    if value:
        assert parse_duration(expected) == value


def test_the_30d_table_is_the_sre_workbook_table() -> None:
    rows = [(w.severity, w.factor, w.long, w.short) for w in SRE_WORKBOOK_30D]
    assert rows == [
        ("critical", 14.4, H, 5 * M),
        ("critical", 6.0, 6 * H, 30 * M),
        ("warning", 3.0, D, 2 * H),
        ("warning", 1.0, 3 * D, 6 * H),
    ]
    # The factors are "percent of the budget burned in the long window": 2 %, 5 %, 10 %, 10 %.
    budget_share = [round(w.factor * (w.long / (30 * D)), 3) for w in SRE_WORKBOOK_30D]
    assert budget_share == [0.02, 0.05, 0.1, 0.1]


def test_30d_is_not_scaled() -> None:
    ws = scale_windows(30 * D)
    assert ws.burn == SRE_WORKBOOK_30D
    assert not ws.clamped
    assert ws.budget_step == 5 * M
    assert ws.no_data_for == 10 * M
    assert ws.rate_windows == (5 * M, 30 * M, H, 2 * H, 6 * H, D, 3 * D)


def test_7d_keeps_the_proportions_exactly() -> None:
    ws = scale_windows(7 * D)
    assert [
        (format_duration(w.long), format_duration(w.short), format_duration(w.for_)) for w in ws.burn
    ] == [
        ("14m", "1m10s", "28s"),
        ("1h24m", "7m", "3m30s"),
        ("5h36m", "28m", "14m"),
        ("16h48m", "1h24m", "42m"),
    ]
    assert [format_duration(w.exhaustion(7 * D)) for w in ws.burn] == ["11h40m", "1d4h", "2d8h", "7d"]
    assert not ws.clamped


def test_1h_slo_behaves_like_30d_scaled_720_times() -> None:
    ws = scale_windows(H, scrape_interval=S)
    assert [(w.long, w.short) for w in ws.burn] == [
        (5 * S, 4 * S),  # 1h/5m -> 5s/0.4s; the short window is raised to 4 scrapes
        (30 * S, 4 * S),  # 6h/30m -> 30s/2.5s -> 4s
        (2 * M, 10 * S),
        (6 * M, 30 * S),
    ]
    assert ws.clamped
    # Same proportions where nothing was clamped: long window / SLO window as for 30d.
    for scaled, base in zip(ws.burn[2:], SRE_WORKBOOK_30D[2:], strict=True):
        assert scaled.long / H == base.long / (30 * D)


def test_10m_slo_for_tests_is_floored_at_four_scrape_intervals() -> None:
    ws = scale_windows(10 * M, scrape_interval=S)
    assert min(ws.rate_windows) == 4 * S
    assert [(w.long, w.short) for w in ws.burn] == [
        (4 * S, 4 * S),
        (5 * S, 4 * S),
        (20 * S, 4 * S),
        (60 * S, 5 * S),
    ]
    assert [w.for_ for w in ws.burn] == [timedelta(), timedelta(), S, 3 * S]
    assert ws.no_data_for == timedelta()  # 10m * 10m/30d rounds to 0s: at the next evaluation


def test_short_window_never_exceeds_long_window() -> None:
    for slo in (10 * M, 30 * M, H, 6 * H, D, 7 * D, 28 * D, 30 * D, 90 * D):
        for scrape in (S, 15 * S, 60 * S):
            if slo < 4 * scrape:
                continue
            for row in scale_windows(slo, scrape_interval=scrape).burn:
                assert row.short <= row.long
                assert row.long >= 4 * scrape


def test_windows_are_whole_seconds() -> None:
    ws = scale_windows(28 * D)  # 28/30 of every window: 1h -> 56m, 5m -> 4m40s
    assert all(w.total_seconds() == int(w.total_seconds()) for w in ws.rate_windows)
    assert format_duration(ws.burn[0].long) == "56m"
    assert format_duration(ws.burn[0].short) == "4m40s"


def test_slo_window_shorter_than_four_scrapes_is_rejected() -> None:
    with pytest.raises(ValueError, match="shorter than 4 scrape intervals"):
        scale_windows(30 * S, scrape_interval=15 * S)
