"""Settings come from the environment and a bad value stops start-up with a readable message."""

from __future__ import annotations

import pytest
from agent_service.settings import Settings, SettingsError, load_settings


def test_defaults_serve_the_reference_agent_as_agent(monkeypatch):
    for name in ("AGENT_GRAPH", "AGENT_GRAPH_ID", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.agent_graph == "agent_service.graphs.reference_agent:build_graph"
    assert settings.agent_graph_id == "agent"
    assert settings.redis_url.startswith("redis://")


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("AGENT_GRAPH", "my_pkg.graphs:research")
    monkeypatch.setenv("AGENT_GRAPH_ID", "research")
    monkeypatch.setenv("REDIS_URL", "rediss://cache.internal:6380/2")
    settings = load_settings()
    assert (settings.agent_graph, settings.agent_graph_id, settings.redis_url) == (
        "my_pkg.graphs:research",
        "research",
        "rediss://cache.internal:6380/2",
    )


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("AGENT_GRAPH", "no_colon_here", "module:attribute"),
        ("AGENT_GRAPH", "pkg:attr:extra", "module:attribute"),
        ("AGENT_GRAPH_ID", "has space", "letters, digits"),
        ("REDIS_URL", "http://localhost:6379", "redis://"),
        ("RUN_TIMEOUT_SECONDS", "-1", "greater than 0"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(monkeypatch, variable, value, complaint):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert f"{variable}:" in message
    assert complaint in message


def test_settings_are_immutable():
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.agent_graph_id = "other"


def test_the_console_script_exits_2_with_the_readable_message(monkeypatch, capsys):
    from agent_service.__main__ import main

    monkeypatch.setenv("REDIS_URL", "localhost:6379")
    with pytest.raises(SystemExit) as exited:
        main(["--port", "0"])
    assert exited.value.code == 2
    assert "REDIS_URL: Value error, must start with redis://" in capsys.readouterr().err
