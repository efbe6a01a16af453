"""The console script's command line."""

from __future__ import annotations

import pytest
from shepherd.__main__ import main, parse_args


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "--namespace" in capsys.readouterr().out


def test_defaults_watch_all_namespaces(monkeypatch):
    monkeypatch.delenv("SHEPHERD_METRICS_PORT", raising=False)
    args = parse_args([])
    assert args.namespace == []
    assert args.metrics_port == 8080


def test_namespaces_repeat():
    assert parse_args(["-n", "a", "--namespace", "b"]).namespace == ["a", "b"]
