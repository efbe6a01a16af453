"""The pod bridge runs a container's command as the kubelet would; these are its pure parts."""

from __future__ import annotations

from tests.harness.podbridge import _expand, _matches, _moved, _with_endpoint, _with_url
from tests.harness.podrunner import PodRunner


def test_variable_references_expand_like_kubernetes() -> None:
    env = {"PORT": "8000", "HOST": "0.0.0.0"}
    assert _expand("--port=$(PORT)", env) == "--port=8000"
    assert _expand("$(HOST):$(PORT)", env) == "0.0.0.0:8000"
    # An unknown reference stays as written, as the kubelet leaves it.
    assert _expand("$(MISSING)", env) == "$(MISSING)"


def test_host_and_port_are_moved_to_loopback_in_both_spellings() -> None:
    args = ["agent-service", "--host", "0.0.0.0", "--port=8000", "--workers", "2"]
    moved = _with_endpoint(_with_endpoint(args, "--host", "127.0.0.1"), "--port", "4321")
    assert moved == ["agent-service", "--host", "127.0.0.1", "--port=4321", "--workers", "2"]


def test_selector_matches_all_terms() -> None:
    pod = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    assert _matches(pod, "a=1,b=2")
    assert not _matches(pod, "a=1,b=3")


def test_url_flags_move_to_a_loopback_port_and_keep_their_path() -> None:
    args = ["shepherd-operator", "--liveness=http://0.0.0.0:8080/healthz", "--probe", "http://0.0.0.0:1/x"]
    moved = _with_url(_with_url(args, "--liveness", 4001), "--probe", 4002)
    assert moved == [
        "shepherd-operator",
        "--liveness=http://127.0.0.1:4001/healthz",
        "--probe",
        "http://127.0.0.1:4002/x",
    ]


def test_port_variables_move_a_port_or_a_host_port_to_loopback() -> None:
    assert _moved("8080", 4001) == "4001"
    assert _moved("127.0.0.1:8082", 4002) == "127.0.0.1:4002"
    assert _moved("0.0.0.0:8082", 4003) == "127.0.0.1:4003"


def test_a_mount_path_is_translated_only_as_whole_path_components(tmp_path) -> None:
    pod = {
        "metadata": {"name": "p", "uid": "u"},
        "spec": {"volumes": [{"name": "tmp", "emptyDir": {}}]},
    }
    container = {"name": "agent", "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}
    runner = PodRunner(None, "ns", tmp_path)  # an emptyDir needs no cluster
    local = tmp_path / "empty-u-tmp"
    assert runner._translate("/tmp/x", pod, container) == f"{local}/x"
    assert runner._translate("dir=/tmp", pod, container) == f"dir={local}"
    assert runner._translate("/var/tmp/x", pod, container) == "/var/tmp/x"
    assert runner._translate("/tmpfiles/x", pod, container) == "/tmpfiles/x"
