"""The one applier: server-side apply of desired children, pruning of unwanted ones, zero-write no-ops.

For each reconcile it lists the live children of the resource (one LIST per known kind, by label
selector), then for every desired object:

* stamps ``shepherd.dev/input-hash`` (a hash of the desired object, prometheus-operator style);
* skips it when the live object carries the same hash and still contains every desired field
  (``contains``) — so a no-op reconcile sends no write at all, while an edited or deleted child
  is re-applied (drift repair);
* otherwise applies it with server-side apply, field manager ``shepherd``, ``force=true`` (only the
  fields we send are ours; fields other controllers set, like HPA-owned replicas, are left alone).

A child that must still change while a freeze holds its rollout only takes a new replica count
(``scale`` subresource) and, when the freeze lets critical changes through, a Secret rotation (the
Pod template's secrets digest), and a Deployment an autoscaler takes over keeps its replica count through
the hand-over (a second field manager owns it before ``shepherd`` lets go).

Live children that are no longer desired (autoscaling switched from HPA to KEDA, Redis switched to
external, monitoring turned off) are deleted first (so an HPA and KEDA's HPA never coexist), but
only when their controller ownerReference is this resource's uid and their kind may be pruned (a
backup volume never is). Kinds whose CRD is absent (404
on LIST) are reported, not fatal.

``ChildLister`` serves the LISTs of many reconciles at once: the reconciles of one namespace that
ask while earlier LISTs are under way (a resync round, the resume of every resource after a
restart) share one LIST per kind with a set-based selector (``shepherd.dev/agentdeployment in
(a,b,...)``): a restart with 2,000 resources sends ~11 x 2,000 / batch LISTs instead of 22,000,
and each of those scans the apiserver's cache of that kind once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from shepherd import lanes
from shepherd.kube import FIELD_MANAGER, KubeClient, KubeError, Outcome
from shepherd.render.all import CHILD_KINDS, ChildKind, kind_of
from shepherd.render.common import MANAGED_BY, OWNER_LABEL, child_selector
from shepherd.render.secret_hash import SECRETS_HASH_ANNOTATION

log = logging.getLogger(__name__)

INPUT_HASH_ANNOTATION = "shepherd.dev/input-hash"
#: Keeps a Deployment's replica count while ownership passes from ``shepherd`` to an autoscaler.
HANDOFF_MANAGER = "shepherd-handoff"
#: Writes a Secret rotation into a held (frozen) workload.
ROTATION_MANAGER = "shepherd-rotation"


def input_hash(obj: dict[str, Any]) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def stamped(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` with the input-hash annotation (computed over the object without it)."""
    meta = dict(obj["metadata"])
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != INPUT_HASH_ANNOTATION}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    digest = input_hash({**obj, "metadata": meta})
    return {**obj, "metadata": {**meta, "annotations": {**annotations, INPUT_HASH_ANNOTATION: digest}}}


def _same_scalar(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, (str, int, float)) and isinstance(have, (str, int, float)):
        try:
            return parse_quantity(want) == parse_quantity(have)
        except (ValueError, TypeError):
            return str(want) == str(have)
    return False


def contains(live: Any, want: Any) -> bool:
    """Whether ``live`` holds every field of ``want`` (extra live fields, e.g. defaults, are fine)."""
    if isinstance(want, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(live, list)
            and len(live) == len(want)
            and all(contains(a, b) for a, b in zip(live, want, strict=True))
        )
    return _same_scalar(want, live)


def _controller_uid(obj: dict[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


class ApplyError(Exception):
    """The apiserver refused a desired object (422/403/...): a bug or a permission problem."""


@dataclass
class SyncResult:
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    #: Kinds wanted but not served by the apiserver (CRD not installed).
    missing_kinds: list[str] = field(default_factory=list)
    #: The live (or freshly applied) objects by (kind, name).
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def writes(self) -> int:
        return len(self.applied) + len(self.deleted)


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


LiveChildren = dict[tuple[str, str], dict[str, Any]]
#: How children are listed: (namespace, owner name) -> (live children by (kind, name), absent kinds).
Lister = Callable[[str, str], Awaitable[tuple[LiveChildren, set[str]]]]


async def _list_kinds(
    client: KubeClient, namespace: str, selector: str, kinds: tuple[ChildKind, ...]
) -> tuple[list[dict[str, Any]], set[str]]:
    """Every object of ``kinds`` matching ``selector`` (kind and apiVersion set), and the kinds the
    apiserver does not serve."""
    items: list[dict[str, Any]] = []
    absent: set[str] = set()
    results = await asyncio.gather(
        *(client.list(k.api_version, k.plural, namespace, selector) for k in kinds)
    )
    for kind, result in zip(kinds, results, strict=True):
        if result.outcome is Outcome.NOT_FOUND:
            absent.add(kind.kind)
            continue
        if not result.ok:
            raise KubeError(f"list {kind.plural}: {result.status_code} {result.message}")
        for item in (result.body or {}).get("items") or []:
            item.setdefault("kind", kind.kind)
            item.setdefault("apiVersion", kind.api_version)
            items.append(item)
    return items, absent


async def list_children(
    client: KubeClient, namespace: str, owner_name: str, kinds: tuple[ChildKind, ...] = CHILD_KINDS
) -> tuple[LiveChildren, set[str]]:
    """Live children by (kind, name), and the kinds the apiserver does not serve."""
    items, absent = await _list_kinds(client, namespace, child_selector(owner_name), kinds)
    return {(item["kind"], item["metadata"]["name"]): item for item in items}, absent


@dataclass
class _Batch:
    owners: set[str] = field(default_factory=set)
    result: asyncio.Future[tuple[dict[str, LiveChildren], set[str]]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ChildLister:
    """``list_children`` shared by the reconciles of one namespace and lane (``shepherd.lanes``)
    that ask at about the same time (see the module docstring). A request is sent at once when
    fewer than ``in_flight`` batches of its namespace and lane are under way; otherwise it joins the
    next batch, sent when one of those returns (or when ``max_batch`` owners wait): alone, a
    reconcile waits for nothing; in a crowd, the batches grow with the crowd; an event's reconcile
    never waits for a resync's batch. Everyone in a batch gets the error of a failed LIST."""

    def __init__(self, client: KubeClient, *, max_batch: int = 64, in_flight: int = 2) -> None:
        self.client, self.max_batch, self.in_flight = client, max_batch, in_flight
        self._open: dict[tuple[str, lanes.Lane], _Batch] = {}
        self._sending: dict[tuple[str, lanes.Lane], set[asyncio.Task[None]]] = {}

    async def __call__(self, namespace: str, owner_name: str) -> tuple[LiveChildren, set[str]]:
        key = (namespace, lanes.current())
        batch = self._open.setdefault(key, _Batch())
        batch.owners.add(owner_name)
        if len(self._sending.get(key, ())) < self.in_flight or len(batch.owners) >= self.max_batch:
            self._send(key)
        by_owner, absent = await asyncio.shield(batch.result)
        return by_owner.get(owner_name, {}), set(absent)

    def _send(self, key: tuple[str, lanes.Lane]) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        tasks = self._sending.setdefault(key, set())
        namespace, lane = key
        with lanes.use(lane):  # also when a batch is sent as another one returns
            task = asyncio.create_task(self._fetch(namespace, batch), name=f"list-children-{namespace}")
        tasks.add(task)
        task.add_done_callback(lambda done: self._sent(key, done))

    def _sent(self, key: tuple[str, lanes.Lane], task: asyncio.Task[None]) -> None:
        tasks = self._sending.get(key, set())
        tasks.discard(task)
        if not tasks:
            self._sending.pop(key, None)
        self._send(key)  # the batch that waited for this one

    async def _fetch(self, namespace: str, batch: _Batch) -> None:
        owners = ",".join(sorted(batch.owners))
        selector = f"app.kubernetes.io/managed-by={MANAGED_BY},{OWNER_LABEL} in ({owners})"
        try:
            items, absent = await _list_kinds(self.client, namespace, selector, CHILD_KINDS)
        except asyncio.CancelledError:  # shutdown
            batch.result.cancel()
            raise
        except Exception as exc:  # KubeError: every waiter of the batch hears it
            batch.result.set_exception(exc)
            batch.result.exception()  # retrieved here: a batch nobody awaits any more logs nothing
            return
        by_owner: dict[str, LiveChildren] = {}
        for item in items:
            owner = (item["metadata"].get("labels") or {}).get(OWNER_LABEL, "")
            by_owner.setdefault(owner, {})[(item["kind"], item["metadata"]["name"])] = item
        batch.result.set_result((by_owner, absent))


async def _scale(
    client: KubeClient,
    kind: ChildKind,
    obj: dict[str, Any],
    replicas: int,
    result: SyncResult,
    note: str,
    field_manager: str = FIELD_MANAGER,
) -> None:
    """Apply ``replicas`` alone through the ``scale`` subresource; ``note`` says why (result, errors)."""
    label = f"{kind.kind}/{obj['metadata']['name']} ({note})"
    scaled = await client.scale(
        kind.api_version,
        kind.plural,
        obj["metadata"]["namespace"],
        obj["metadata"]["name"],
        replicas,
        field_manager=field_manager,
    )
    if not scaled.ok:
        raise ApplyError(f"{label}: {scaled.status_code} {scaled.message}")
    result.applied.append(label)


async def _scale_held(
    client: KubeClient, kind: ChildKind, obj: dict[str, Any], live: dict[str, Any], result: SyncResult
) -> dict[str, Any]:
    """A held child still takes a new replica count (scaling is not a rollout): through the
    ``scale`` subresource, so nothing else of the held spec reaches it. Returns the live object."""
    want = (obj.get("spec") or {}).get("replicas")
    if not kind.scalable or want is None or want == (live.get("spec") or {}).get("replicas"):
        return live
    await _scale(client, kind, obj, want, result, "scale")
    return {**live, "spec": {**live["spec"], "replicas": want}}


def _owns_replicas(live: dict[str, Any]) -> bool:
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        spec = ((entry.get("fieldsV1") or {}).get("f:spec")) or {}
        if entry.get("manager") == FIELD_MANAGER and "f:replicas" in spec:
            return True
    return False


async def _hand_off_replicas(
    client: KubeClient, kind: ChildKind, obj: dict[str, Any], live: dict[str, Any], result: SyncResult
) -> None:
    """Before an apply that stops setting ``replicas`` (an autoscaler takes over), give the live count
    a second owner: otherwise server-side apply removes the field and the Deployment drops to its
    default of 1 replica until the autoscaler acts (the Kubernetes docs' ownership hand-over)."""
    replicas = (live.get("spec") or {}).get("replicas")
    if (
        not kind.scalable
        or "replicas" in (obj.get("spec") or {})
        or replicas is None
        or not _owns_replicas(live)
    ):
        return
    note = "replicas handed to the autoscaler"
    await _scale(client, kind, obj, replicas, result, note, field_manager=HANDOFF_MANAGER)


def _template_annotation(obj: dict[str, Any], key: str) -> str | None:
    template = (obj.get("spec") or {}).get("template") or {}
    return ((template.get("metadata") or {}).get("annotations") or {}).get(key)


async def _rotate_held(
    client: KubeClient, kind: ChildKind, obj: dict[str, Any], live: dict[str, Any], result: SyncResult
) -> dict[str, Any]:
    """A held child still takes a Secret rotation (a critical change): only the Pod template's
    secrets digest is patched, by a manager of its own, so the held spec stays out. Returns the live
    object. (The next full apply by ``shepherd`` takes the annotation back, force being on.)"""
    want = _template_annotation(obj, SECRETS_HASH_ANNOTATION)
    if want is None or want == _template_annotation(live, SECRETS_HASH_ANNOTATION):
        return live
    name = obj["metadata"]["name"]
    patch = {"spec": {"template": {"metadata": {"annotations": {SECRETS_HASH_ANNOTATION: want}}}}}
    patched = await client.patch(
        kind.api_version,
        kind.plural,
        obj["metadata"]["namespace"],
        name,
        patch,
        field_manager=ROTATION_MANAGER,
    )
    if not patched.ok:
        raise ApplyError(f"{kind.kind}/{name} (secret rotation): {patched.status_code} {patched.message}")
    result.applied.append(f"{kind.kind}/{name} (secret rotation)")
    return patched.body or live


async def sync(
    client: KubeClient,
    *,
    namespace: str,
    owner_name: str,
    owner_uid: str,
    desired: list[dict[str, Any]],
    hold: Callable[[dict[str, Any], dict[str, Any]], bool] = lambda _obj, _live: False,
    rotate_held: bool = False,
    first_time: bool = False,
    lister: Lister | None = None,
) -> SyncResult:
    """Make the children of one resource match ``desired``: apply what differs, prune the rest.

    ``hold(obj, live)`` returning True keeps an existing child as it is (a frozen rollout); a held child
    that does not exist yet is created anyway, so a new resource always gets a workload. With
    ``rotate_held`` a held child still takes a Secret rotation (``_rotate_held``); one whose only
    difference was that rotation is then up to date, not held.
    ``first_time`` (the resource was never reconciled) skips the LISTs: everything is applied (an
    idempotent server-side apply, should a crashed earlier attempt have created some of it) and
    nothing can need pruning yet; the next resync does the full comparison. ``lister`` lists the
    live children (default: ``list_children`` on its own; the reconciler passes its ``ChildLister``).
    """
    result = SyncResult()
    if first_time:
        live, absent = {}, set()
    elif lister is not None:
        live, absent = await lister(namespace, owner_name)
    else:
        live, absent = await list_children(client, namespace, owner_name)
    stamped_desired = [stamped(raw) for raw in desired]
    wanted = {_key(obj) for obj in stamped_desired}
    # Prune first: an autoscaler switched from HPA to KEDA must not briefly have two HPAs fighting.
    for key, obj in live.items():
        if key in wanted or _controller_uid(obj) != owner_uid or not kind_of(obj).prune:
            continue
        kind = kind_of(obj)
        gone = await client.delete(
            kind.api_version, kind.plural, namespace, key[1], obj["metadata"].get("uid")
        )
        if gone.ok or gone.outcome in (Outcome.NOT_FOUND, Outcome.CONFLICT):
            result.deleted.append(f"{key[0]}/{key[1]}")
        else:
            raise ApplyError(f"delete {key[0]}/{key[1]}: {gone.status_code} {gone.message}")
    for obj in stamped_desired:
        kind = kind_of(obj)
        key = _key(obj)
        if kind.kind in absent:
            if kind.kind not in result.missing_kinds:
                result.missing_kinds.append(kind.kind)
            continue
        current = live.get(key)
        label = f"{kind.kind}/{key[1]}"
        if current is not None and contains(current, obj):
            result.unchanged.append(label)
            result.objects[key] = current
            continue
        if current is not None and hold(obj, current):
            current = await _scale_held(client, kind, obj, current, result)
            if rotate_held:
                current = await _rotate_held(client, kind, obj, current, result)
            result.objects[key] = current
            if not contains(current, obj):
                result.held.append(label)
            continue
        if current is not None:
            await _hand_off_replicas(client, kind, obj, current, result)
        applied = await client.apply(obj, kind.plural)
        if applied.outcome is Outcome.NOT_FOUND and kind.optional:
            result.missing_kinds.append(kind.kind)  # CRD removed since the LIST
            continue
        if not applied.ok:
            raise ApplyError(f"apply {label}: {applied.status_code} {applied.message}")
        result.applied.append(label)
        result.objects[key] = applied.body or obj
    return result
