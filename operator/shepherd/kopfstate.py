"""Where kopf keeps its per-resource bookkeeping: in this process, not on the resources.

By default kopf writes two things onto every resource it handles: the essence it last handled
(the diff base, ``last-handled-configuration``), one PATCH after every handled change, and on the
first handling a ``kopf-managed`` marker next to its progress records (a tenth of the operator's
writes at fleet scale, each one more watch event to process). Shepherd's reconcile is level-based
and sends nothing when nothing differs, so this bookkeeping only decides *when* the reconcile runs,
never *what* it does; kept in memory, a restarted (or newly elected) operator finds none, kopf
calls every resource "created", and the reconcile - which skips its LISTs only for a resource with
no ``status.observedGeneration`` yet - compares everything, as a resume does anyway. (kopf's
docs: "Change detection" and "Handling progress"; custom storages are the documented way.)

A handler that failed and waits for its retry still needs a watch event when its delay is over:
kopf gets one by touching the resource (``shepherd.dev/touch-dummy``), the one annotation left, on
errors only. Records written by an older operator (``shepherd.dev/<handler>``) are still read and
removed once their handler succeeds; ``shepherd.dev/last-handled-configuration`` is not read any
more (``kubectl annotate agd --all shepherd.dev/last-handled-configuration-`` removes it).
"""

from __future__ import annotations

from typing import Any

import kopf


class MemoryDiffBase(kopf.DiffBaseStorage):
    """The essence kopf last handled, by uid; ``forget`` drops a deleted resource's."""

    def __init__(self) -> None:
        super().__init__()
        self._essences: dict[str, kopf.BodyEssence] = {}

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        """kopf's essence (spec, labels, annotations), from a copy without ``status`` and
        ``managedFields``: kopf deep-copies the whole body first, a third of a restart's CPU."""
        if extra_fields:
            return super().build(body=body, extra_fields=extra_fields)
        light = {k: v for k, v in body.items() if k != "status"}
        light["metadata"] = {k: v for k, v in body.metadata.items() if k in ("labels", "annotations")}
        return super().build(body=kopf.Body(light))

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return self._essences.get(body.metadata.uid or "")

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence, **_: Any) -> None:
        self._essences[body.metadata.uid or ""] = essence

    def forget(self, uid: str) -> None:
        self._essences.pop(uid, None)

    def __len__(self) -> int:
        return len(self._essences)


class MemoryProgress(kopf.AnnotationsProgressStorage):
    """Handler progress (retries, failures) by uid and handler id; touches stay annotations."""

    def __init__(self, *, prefix: str) -> None:
        super().__init__(prefix=prefix)
        self._records: dict[tuple[str, str], kopf.ProgressRecord] = {}

    def fetch(self, *, key: Any, body: kopf.Body) -> kopf.ProgressRecord | None:
        found = self._records.get((body.metadata.uid or "", key))
        return found if found is not None else super().fetch(key=key, body=body)

    def store(self, *, key: Any, record: kopf.ProgressRecord, body: kopf.Body, patch: kopf.Patch) -> None:
        self._records[(body.metadata.uid or "", key)] = record

    def purge(self, *, key: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        self._records.pop((body.metadata.uid or "", key), None)
        super().purge(key=key, body=body, patch=patch)  # an older operator's record, if any

    def forget(self, uid: str) -> None:
        for record in [k for k in self._records if k[0] == uid]:
            del self._records[record]
