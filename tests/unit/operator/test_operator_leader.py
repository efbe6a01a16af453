"""The Lease logic of ``shepherd.leader`` against an in-memory Lease API with resourceVersion
conflicts (the two-process failover on the real apiserver: tests/integration/operator/test_operator_ha.py)."""

from __future__ import annotations

import asyncio
import copy

import pytest
from shepherd.kube import Outcome, Result
from shepherd.leader import LeaderElector, LeaseSettings

NS = "shepherd-system"
FAST = {"lease_duration": 0.4, "renew_deadline": 0.25, "retry_period": 0.05}


class Leases:
    """One Lease object with optimistic concurrency, as the apiserver keeps it."""

    def __init__(self) -> None:
        self.lease: dict | None = None
        self.version = 0
        self.down = False

    def client(self) -> LeaseClient:
        return LeaseClient(self)


class LeaseClient:
    def __init__(self, store: Leases) -> None:
        self.store = store

    async def request(self, method, path, *, body=None, **_):
        store = self.store
        if store.down:
            return Result(Outcome.FORBIDDEN, 403, None, "unavailable")
        if method == "GET":
            if store.lease is None:
                return Result(Outcome.NOT_FOUND, 404, None)
            return Result(Outcome.OK, 200, copy.deepcopy(store.lease))
        if method == "POST" and store.lease is not None:
            return Result(Outcome.CONFLICT, 409, None, "already exists")
        if method == "PUT" and body["metadata"].get("resourceVersion") != str(store.version):
            return Result(Outcome.CONFLICT, 409, None, "the object has been modified")
        store.version += 1
        store.lease = {
            **copy.deepcopy(body),
            "metadata": {**body["metadata"], "resourceVersion": str(store.version)},
        }
        return Result(Outcome.OK, 200, copy.deepcopy(store.lease))


def elector(store: Leases, identity: str) -> LeaderElector:
    return LeaderElector(store.client(), LeaseSettings(namespace=NS, identity=identity, **FAST))


def holder(store: Leases) -> str | None:
    return (store.lease or {}).get("spec", {}).get("holderIdentity")


async def test_one_leads_the_other_takes_over_when_renewals_stop():
    store = Leases()
    a, b = elector(store, "a"), elector(store, "b")
    await a.acquire()
    assert holder(store) == "a"
    assert a.leading
    holding = asyncio.ensure_future(a.hold())
    waiting = asyncio.ensure_future(b.acquire())
    await asyncio.sleep(1.0)  # a renews: b keeps waiting, well past one lease duration
    assert not waiting.done()
    assert holder(store) == "a"
    holding.cancel()  # a dies without a word
    await asyncio.wait_for(waiting, timeout=2)
    assert holder(store) == "b"
    assert store.lease["spec"]["leaseTransitions"] == 1


async def test_a_released_lease_is_taken_at_the_next_read():
    store = Leases()
    a, b = elector(store, "a"), elector(store, "b")
    await a.acquire()
    waiting = asyncio.ensure_future(b.acquire())
    await asyncio.sleep(0.1)
    await a.release()
    assert holder(store) is None
    assert not a.leading
    await asyncio.wait_for(waiting, timeout=FAST["lease_duration"] / 2)  # no waiting out the lease
    assert holder(store) == "b"


async def test_a_leader_that_cannot_renew_gives_up_before_the_lease_expires():
    store = Leases()
    a = elector(store, "a")
    await a.acquire()
    store.down = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(a.hold(), timeout=2)
    assert not a.leading
    assert loop.time() - started < FAST["lease_duration"] + FAST["retry_period"]


async def test_two_candidates_for_a_free_lease_make_one_leader():
    store = Leases()
    a, b = elector(store, "a"), elector(store, "b")
    done, pending = await asyncio.wait(
        [asyncio.ensure_future(a.acquire()), asyncio.ensure_future(b.acquire())],
        timeout=0.3,
        return_when=asyncio.FIRST_COMPLETED,
    )
    assert len(done) == 1
    assert len(pending) == 1
    assert [e.leading for e in (a, b)].count(True) == 1
    for task in pending:
        task.cancel()


def test_settings_name_the_variable_that_is_wrong(monkeypatch):
    monkeypatch.setenv("SHEPHERD_NAMESPACE", NS)
    monkeypatch.setenv("SHEPHERD_LEADER_LEASE_SECONDS", "soon")
    with pytest.raises(ValueError, match="SHEPHERD_LEADER_LEASE_SECONDS='soon'"):
        LeaseSettings.from_environment()
    monkeypatch.setenv("SHEPHERD_LEADER_LEASE_SECONDS", "5")
    monkeypatch.setenv("SHEPHERD_LEADER_RENEW_SECONDS", "6")
    with pytest.raises(ValueError, match="retry period < renew deadline < lease duration"):
        LeaseSettings.from_environment()
    monkeypatch.delenv("SHEPHERD_NAMESPACE")
    with pytest.raises(ValueError, match="SHEPHERD_NAMESPACE"):
        LeaseSettings(namespace="")


async def test_readiness_is_leadership_liveness_is_not():
    import httpx
    from shepherd.elected import serve_health

    from tests.harness.processes import free_port

    port, leading = free_port(), [False]
    runner = await serve_health(f"http://127.0.0.1:{port}/healthz", lambda: leading[0])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 503
            leading[0] = True
            assert (await http.get("/readyz")).json() == {"leading": True}
    finally:
        await runner.cleanup()
    with pytest.raises(ValueError, match="expected http://HOST:PORT/PATH"):
        await serve_health("0.0.0.0:8080", lambda: True)
