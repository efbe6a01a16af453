"""SIGTERM stops the operator cleanly (exit code 0, no SIGKILL) while it is busy with many resources.

A restarted operator resumes every AgentDeployment at once: one LIST per child kind per resource.
Those requests once queued inside httpx's connection pool, whose per-request rescans of the queue
kept the event loop too busy to act on SIGTERM (issue 4: 500 resources, no exit within 60 s).
"""

from __future__ import annotations

import signal
import subprocess

from bench.operator_scale import agent  # the smallest realistic resource
from tests.harness.cluster import Cluster
from tests.harness.operator import OperatorProcess
from tests.harness.processes import wait_until

from .conftest import PRODUCTION_RESYNC, condition, get_agd

COUNT = 60
#: Only a bound for the wait (a hung operator fails the test instead of hanging it), not a target.
EXIT_TIMEOUT = 30


def terminate(op: OperatorProcess) -> int | None:
    """SIGTERM, then the exit code, or None if the process had to be killed."""
    assert op.proc is not None
    op.proc.send_signal(signal.SIGTERM)
    try:
        return op.proc.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        op.kill()
        return None


def test_sigterm_while_busy_exits_cleanly(kube: Cluster, start_operator):
    ns = kube.namespace("sigterm")
    first = start_operator(ns, resync=PRODUCTION_RESYNC)
    kube.apply(*(agent(f"a{i}") for i in range(COUNT)), namespace=ns)
    # Mid-burst: some resources are reconciled, most are still queued.
    wait_until(
        lambda: condition(get_agd(kube, ns, "a0"), "Ready") is not None,
        timeout=120,
        what="the first status write",
        interval=0.2,
    )
    assert terminate(first) == 0, first.log()[-4000:]
    assert "Signal SIGTERM is received" in first.log()

    # A restart resumes all of them at once (COUNT x child kinds LISTs); stop it in the middle.
    second = start_operator(ns, resync=PRODUCTION_RESYNC)
    wait_until(
        lambda: "Handler 'reconcile' succeeded" in second.log(),
        timeout=120,
        what="the restarted operator to resume a resource",
        interval=0.2,
    )
    assert terminate(second) == 0, second.log()[-4000:]
