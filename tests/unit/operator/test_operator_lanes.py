"""Lanes (shepherd.lanes): writes, then events, then the resync, for the client's connections, the
reconciler's slots and the shared child LISTs."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from kubernetes import client as k8s_client
from shepherd import lanes
from shepherd.apply import ChildLister
from shepherd.kube import KubeClient
from shepherd.lanes import Lane, Slots
from shepherd.reconcile import Reconciler
from shepherd.render.all import CHILD_KINDS

from .fake_kube import FakeKube
from .test_operator_reconcile import NS, SEEN, body


async def settle() -> None:
    """Lets every task that can run do so (no clock involved)."""
    for _ in range(50):
        await asyncio.sleep(0)


def holder(slots: Slots, lane: Lane, order: list[str], name: str, release: asyncio.Event) -> asyncio.Task:
    async def hold() -> None:
        async with slots.hold(lane):
            order.append(name)
            await release.wait()

    return asyncio.create_task(hold(), name=name)


async def test_a_freed_slot_goes_to_a_write_then_an_event_then_the_oldest_resync():
    slots, order, go = Slots(2), [], asyncio.Event()
    first = [holder(slots, Lane.EVENT, order, f"busy{i}", asyncio.Event()) for i in range(2)]
    await settle()
    waiters = [
        holder(slots, Lane.RESYNC, order, "resync1", go),
        holder(slots, Lane.RESYNC, order, "resync2", go),
        holder(slots, Lane.EVENT, order, "event", go),
        holder(slots, Lane.WRITE, order, "write", go),
    ]
    await settle()
    assert order == ["busy0", "busy1"]
    assert [slots.waiting(lane) for lane in Lane] == [1, 1, 2]
    go.set()
    for task in first:
        task.cancel()
    await asyncio.gather(*waiters)
    assert order[2:] == ["write", "event", "resync1", "resync2"]
    assert [slots.held(lane) for lane in Lane] == [0, 0, 0]


async def test_the_resync_leaves_a_quarter_of_the_slots_to_events():
    slots, order, hold_on = Slots(8), [], asyncio.Event()
    resyncs = [holder(slots, Lane.RESYNC, order, f"resync{i}", hold_on) for i in range(10)]
    await settle()
    assert slots.held(Lane.RESYNC) == lanes.background_share(8) == 6
    assert slots.waiting(Lane.RESYNC) == 4
    events = [holder(slots, Lane.EVENT, order, f"event{i}", hold_on) for i in range(2)]
    await settle()
    assert order[-2:] == ["event0", "event1"]  # at once, though four resyncs were waiting first
    hold_on.set()
    await asyncio.gather(*resyncs, *events)
    assert sorted(order) == sorted([f"resync{i}" for i in range(10)] + ["event0", "event1"])


@pytest.mark.parametrize(("size", "share"), [(1, 1), (2, 1), (4, 3), (16, 12), (32, 24)])
def test_background_share(size, share):
    assert lanes.background_share(size) == share


def test_slots_need_a_size():
    with pytest.raises(ValueError, match="size must be at least 1, not 0"):
        Slots(0)


def test_releasing_a_slot_not_held_is_a_bug():
    with pytest.raises(RuntimeError, match="release of a RESYNC slot not held"):
        Slots(1).release(Lane.RESYNC)


async def test_a_cancelled_waiter_leaves_its_queue_and_a_granted_one_hands_its_slot_on():
    slots, order, go = Slots(1), [], asyncio.Event()
    busy = holder(slots, Lane.EVENT, order, "busy", go)
    await settle()
    gone = holder(slots, Lane.EVENT, order, "gone", go)
    await settle()
    gone.cancel()
    await settle()
    assert slots.waiting(Lane.EVENT) == 0
    granted = holder(slots, Lane.EVENT, order, "granted", go)
    after = holder(slots, Lane.RESYNC, order, "after", go)
    await settle()
    busy.cancel()  # frees the slot: "granted" gets it, and is cancelled before it runs
    await asyncio.sleep(0)
    granted.cancel()
    go.set()
    await after
    assert order == ["busy", "after"]
    assert [slots.held(lane) for lane in Lane] == [0, 0, 0]


@pytest.mark.parametrize(
    ("reason", "status", "lane"),
    [
        ("create", None, Lane.EVENT),  # a new resource
        ("create", {"observedGeneration": 1}, Lane.RESYNC),  # a restart's "create": a resume
        ("resume", {"observedGeneration": 1}, Lane.RESYNC),
        ("resume", {"conditions": []}, Lane.EVENT),  # never reconciled
        ("update", {"observedGeneration": 1}, Lane.EVENT),  # annotations only: still a user's edit
    ],
)
def test_a_reconcile_is_resync_work_only_when_its_generation_was_reconciled(reason, status, lane):
    assert lanes.for_cause(reason, body({}, status=status)) is lane


def test_a_spec_changed_while_no_operator_ran_is_event_work():
    assert lanes.for_cause("create", body({}, generation=2, status={"observedGeneration": 1})) is Lane.EVENT


async def test_the_lane_reaches_the_tasks_started_in_it():
    async def seen() -> Lane:
        return lanes.current()

    assert lanes.current() is Lane.EVENT
    with lanes.use(Lane.RESYNC):
        task = asyncio.create_task(seen())
    assert lanes.current() is Lane.EVENT
    assert await task is Lane.RESYNC


async def test_the_client_sends_a_write_and_an_event_read_before_queued_resync_reads():
    """Through ``KubeClient.request`` (an httpx transport in memory): a full pool of resync GETs,
    more waiting; the PATCH and the event's GET are sent as soon as one returns."""
    sent: list[str] = []
    gates: dict[str, asyncio.Event] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        gates.setdefault(request.url.path, asyncio.Event())
        await gates[request.url.path].wait()
        return httpx.Response(200, json={})

    cfg = k8s_client.Configuration()
    cfg.host = "http://kube.test"
    client = KubeClient(cfg, max_connections=4)
    client._http = httpx.AsyncClient(base_url=cfg.host, transport=httpx.MockTransport(handler))
    with lanes.use(Lane.RESYNC):
        resync = [asyncio.create_task(client.request("GET", f"/r{i}")) for i in range(5)]
    await settle()
    assert sent == ["GET /r0", "GET /r1", "GET /r2"]  # three of four connections: the share
    event = asyncio.create_task(client.request("GET", "/e"))
    write = asyncio.create_task(client.request("PATCH", "/w", body={}))
    await settle()
    assert sent[3:] == ["GET /e"]  # the fourth connection, at once
    for path in ("/r0", "/e", "/w"):
        gates.setdefault(path, asyncio.Event()).set()
    await settle()
    assert sent[4:6] == ["PATCH /w", "GET /r3"]
    for gate in [*gates.values(), *(gates.setdefault(f"/r{i}", asyncio.Event()) for i in range(5))]:
        gate.set()
    await asyncio.gather(*resync, event, write)
    await client.close()


async def test_an_event_reconcile_does_not_join_a_resync_batch_of_child_lists():
    kube = FakeKube()
    lister = ChildLister(kube, in_flight=1)
    with lanes.use(Lane.RESYNC):
        resync = [asyncio.create_task(lister(NS, f"old{i}")) for i in range(3)]
    event = asyncio.create_task(lister(NS, "new"))
    await asyncio.gather(*resync, event)
    # The resync: one batch in flight, the two others in a second one; the event's own batch.
    assert kube.counts["GET"] == 3 * len(CHILD_KINDS)


async def test_a_new_resource_reconciles_while_the_resumes_fill_their_share():
    """With every resync slot taken by resumes still waiting for their LISTs, a new resource's
    reconcile runs (and writes its children) without waiting for any of them."""
    listing = asyncio.Event()

    class SlowLists(FakeKube):
        async def list(self, api_version, plural, namespace, selector):
            await listing.wait()
            return await super().list(api_version, plural, namespace, selector)

    kube = SlowLists()
    rec = Reconciler(kube, concurrency=4)
    old = []
    for i in range(6):
        obj = body({}, status=SEEN)
        obj["metadata"].update(name=f"old{i}", uid=f"uid-old{i}")
        old.append(obj)
    with lanes.use(Lane.RESYNC):
        resumes = [asyncio.create_task(rec.reconcile(obj)) for obj in old]
    await settle()
    new = body({})
    new["metadata"].update(name="new", uid="uid-new")
    created = asyncio.create_task(rec.reconcile(new, first_time=True))
    await settle()
    try:
        assert created.done()
        assert created.result()["applied"]  # its children, while the resumes wait
        assert not any(task.done() for task in resumes)
    finally:
        listing.set()
        await asyncio.gather(*resumes)
