"""`make demo`: the error-budget story, live, on the `make dev` environment, in about three minutes.

Steady traffic goes to the `quick` example through its printed URL; an LLM outage is injected into
the fake Anthropic server (its control API, tests/fakes/control.py); the circuit opens; failed runs
burn the availability budget (`agent_runs_total{outcome,reason}`); the freeze engages; an image
change is applied and held (status.pending and a Warning Event say why); the outage ends; the freeze
lifts after the quiet period; the held change rolls out. Each stage is waited for and reported with
what showed it; the exit status is 0 only if every stage was observed. A live view prints quick's
`kubectl get agd` row whenever it changes.

To fit in minutes, the demo first tunes quick with its documented fields: `spec.slo.window: 1m`
(the budget refills a minute after the outage), `spec.slo.minEvents: 4` (the low-traffic guard
scaled to a few runs a second) and `errorBudgetPolicy.recovery.quietPeriod: 10s`. quick keeps that
tuning afterwards (`make dev-down && make dev` starts afresh).

    python -m tests.harness.demo
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from .binaries import toolset
from .cluster import Cluster
from .dev import AGENTS_FILE, EXAMPLES_NAMESPACE, STATE_FILE, _condition
from .processes import wait_until

NAME = "quick"
TUNING = {
    "spec": {
        "slo": {"window": "1m", "minEvents": 4},
        "errorBudgetPolicy": {"recovery": {"quietPeriod": "10s"}},
    }
}
QUESTION = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "what is 6 * 7?"}]}}
OUTAGE = {"faults": [{"kind": "status", "status": 529, "times": 1_000_000}]}


class StoryError(RuntimeError):
    pass


class Demo:
    def __init__(self, cluster: Cluster, agent_url: str, claude_url: str) -> None:
        self.cluster, self.agent_url, self.claude_url = cluster, agent_url, claude_url
        self.started, self.since = time.monotonic(), datetime.now(UTC).replace(microsecond=0)
        self.outcomes: Counter[str] = Counter()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- what a person reads ---------------------------------------------------------------------

    def say(self, line: str) -> None:
        print(f"[{time.monotonic() - self.started:5.0f}s] {line}", flush=True)

    def _row(self) -> str:
        table = self.cluster.kubectl("get", "agd", NAME, "-n", EXAMPLES_NAMESPACE, check=False).stdout
        return table.rstrip()

    def _live_view(self) -> None:
        shown = ""
        while not self._stop.wait(2):
            with contextlib.suppress(Exception):  # the apiserver busy: the next look shows it
                lines = self._row().splitlines()
                if len(lines) == 2 and lines[1] != shown:
                    if not shown:
                        print(f"        kubectl get agd | {lines[0]}", flush=True)
                    shown = lines[1]
                    print(f"        kubectl get agd | {shown}", flush=True)

    # -- traffic ---------------------------------------------------------------------------------

    def _client(self) -> None:
        with httpx.Client(base_url=self.agent_url, timeout=30) as http:
            while not self._stop.is_set():
                self.outcomes[ask(http)] += 1
                self._stop.wait(0.25)

    def start(self, clients: int = 3) -> None:
        for index in range(clients):
            self._threads.append(threading.Thread(target=self._client, name=f"client-{index}", daemon=True))
        self._threads.append(threading.Thread(target=self._live_view, name="live-view", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=35)

    # -- the resource ----------------------------------------------------------------------------

    def agd(self) -> dict[str, Any]:
        return self.cluster.get("agentdeployment", NAME, EXAMPLES_NAMESPACE)

    def patch(self, doc: dict[str, Any]) -> int:
        self.cluster.kubectl(
            "patch", "agentdeployment", NAME, "-n", EXAMPLES_NAMESPACE, "--type=merge", "-p", json.dumps(doc)
        )
        return self.agd()["metadata"]["generation"]

    def deployment_image(self) -> str:
        deployment = self.cluster.get("deployment", NAME, EXAMPLES_NAMESPACE)
        return deployment["spec"]["template"]["spec"]["containers"][0]["image"]

    def event(self, reason: str) -> str | None:
        """The latest Event of ``reason`` on the resource since the demo began."""
        for event in reversed(self.cluster.get("events", namespace=EXAMPLES_NAMESPACE)["items"]):
            at = _at(event.get("lastTimestamp") or event.get("eventTime"))
            if event["involvedObject"].get("name") == NAME and event["reason"] == reason and at >= self.since:
                return f"{event['type']} {reason}: {event.get('message', '')}"
        return None

    def stage(self, what: str, check: Callable[[dict[str, Any]], str | None], timeout: float) -> str:
        """Waits until ``check`` (given the resource) says what shows the stage; fails naming it."""
        try:
            shown = wait_until(lambda: check(self.agd()), timeout=timeout, what=what, interval=1)
        except TimeoutError:
            status = json.dumps(self.agd().get("status", {}))[:3000]
            raise StoryError(f"not observed within {timeout:.0f}s: {what}\nstatus: {status}") from None
        self.say(f"  seen: {shown}")
        return shown


def ask(http: httpx.Client) -> str:
    """One stateless run to completion: ``success``, ``failed`` (the run's error in the answer), or
    what went wrong on the way."""
    try:
        answer = http.post("/runs/wait", json=QUESTION)
    except httpx.HTTPError as error:
        return type(error).__name__
    if answer.status_code != 200:
        return f"HTTP {answer.status_code}"
    return "failed" if "__error__" in answer.json() else "success"


def _at(timestamp: str | None) -> datetime | None:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")) if timestamp else None


def _budget(obj: dict[str, Any]) -> dict[str, Any]:
    return (obj.get("status") or {}).get("errorBudget") or {}


def story(demo: Demo) -> None:
    say = demo.say
    say(f"0/8 tuning {NAME} for a 3-minute story: {json.dumps(TUNING['spec'])}")
    generation = demo.patch(TUNING)
    demo.stage(
        "the tuned spec running",
        lambda o: (
            _condition(o, "Ready").get("status") == "True"
            and (o.get("status") or {}).get("observedGeneration") == generation
            and f"generation {generation} Ready ({o['status'].get('ready')})"
        ),
        timeout=120,
    )

    say(f"1/8 steady traffic: 3 clients ask {NAME} through {demo.agent_url}")
    demo.start()
    traffic_since = datetime.now(UTC).replace(microsecond=0)
    demo.stage(
        "a healthy budget read from Prometheus after 20 good runs",
        lambda o: (
            demo.outcomes["success"] >= 20
            and (_at(_budget(o).get("evaluatedAt")) or traffic_since) > traffic_since
            and (_budget(o).get("remainingPercent") or -1) >= 50
            and _condition(o, "Frozen").get("status") == "False"
            and f"budget {_budget(o)['remainingPercent']:.0f}% left, no freeze, runs {dict(demo.outcomes)}"
        ),
        timeout=120,
    )

    say(f"2/8 LLM outage: every call to Claude answers 529 ({demo.claude_url}/_control/faults)")
    httpx.post(f"{demo.claude_url}/_control/faults", json=OUTAGE, timeout=10).raise_for_status()
    demo.stage(
        "circuits open",
        lambda o: (
            _condition(o, "CircuitsClosed").get("status") == "False"
            and f"CIRCUITS {o['status'].get('circuitsSummary')}: {_condition(o, 'CircuitsClosed')['message']}"
        ),
        timeout=60,
    )

    say("3/8 the budget burns: failed runs count against availability")
    demo.stage(
        "half the budget spent",
        lambda o: (
            (_budget(o).get("consumedPercent") or 0) >= 50
            and f"{_budget(o)['consumedPercent']:.0f}% consumed, burn rates "
            f"{[(b['window'], round(b['rate'], 1)) for b in _budget(o).get('burnRates', [])]}"
        ),
        timeout=90,
    )

    say("4/8 the freeze engages")
    demo.stage(
        "Frozen=True and its Event",
        lambda o: (
            _condition(o, "Frozen").get("status") == "True"
            and (event := demo.event("RolloutsFrozen"))
            and f"FREEZE {o['status']['freeze']['level']}; {event}"
        ),
        timeout=60,
    )

    running = demo.deployment_image()
    new_image = f"{running.rsplit(':', 1)[0]}:demo-{int(time.time())}"
    say(f"5/8 an image change is applied: {new_image}")
    generation = demo.patch({"spec": {"image": new_image}})
    demo.stage(
        "the change held, with its reason in status and an Event",
        lambda o: (
            ((o.get("status") or {}).get("pending") or {}).get("generation") == generation
            and demo.deployment_image() == running
            and (event := demo.event("FrozenByErrorBudget"))
            and f"held: {o['status']['pending']['reason']}; {event}; the Deployment still runs {running}"
        ),
        timeout=60,
    )

    say("6/8 the outage ends")
    httpx.post(f"{demo.claude_url}/_control/reset", timeout=10).raise_for_status()
    demo.stage(
        "circuits closed",
        lambda o: (
            _condition(o, "CircuitsClosed").get("status") == "True"
            and f"CIRCUITS {o['status'].get('circuitsSummary')}"
        ),
        timeout=90,
    )

    say("7/8 the freeze lifts once the budget is back and the burn stayed quiet")
    demo.stage(
        "Frozen=False and its Event",
        lambda o: (
            _condition(o, "Frozen").get("status") == "False"
            and (event := demo.event("FreezeLifted"))
            and f"FREEZE {o['status']['freeze']['level']}, "
            f"budget {_budget(o).get('remainingPercent', 0):.0f}% left; {event}"
        ),
        timeout=180,
    )

    say("8/8 the held change rolls out")
    with httpx.Client(base_url=demo.agent_url, timeout=30) as http:
        demo.stage(
            "the held image in the Deployment, its Pod answering through the URL",
            lambda o: (
                demo.deployment_image() == new_image
                and "pending" not in (o.get("status") or {})
                and _condition(o, "Ready").get("status") == "True"
                and ask(http) == "success"
                and f"IMAGE {o['status'].get('image')}, Ready {o['status'].get('ready')}, a run succeeded"
            ),
            timeout=120,
        )


def main() -> None:
    if not STATE_FILE.exists():
        sys.exit("make dev is not running: start it first (`make dev`)")
    state = json.loads(STATE_FILE.read_text())
    agents = json.loads(AGENTS_FILE.read_text()) if AGENTS_FILE.exists() else {}
    if NAME not in agents:
        sys.exit(
            f"{NAME} is not served by make dev ({AGENTS_FILE}): see `kubectl get agd -n {EXAMPLES_NAMESPACE}`"
        )
    cluster = Cluster(toolset(), Path(state["kubeconfig"]), STATE_FILE.parent)
    demo = Demo(cluster, agents[NAME]["url"], state["anthropic_url"])
    try:
        story(demo)
    except StoryError as missed:
        demo.say(f"FAILED: {missed}")
        sys.exit(1)
    finally:
        with contextlib.suppress(httpx.HTTPError):  # never leave Claude failing
            httpx.post(f"{demo.claude_url}/_control/reset", timeout=10)
        demo.stop()
    demo.say(f"every stage observed; runs {dict(demo.outcomes)}")


if __name__ == "__main__":
    main()
