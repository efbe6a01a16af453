"""An in-memory stand-in for ``shepherd.kube.KubeClient`` (unit tests; integration uses an apiserver)."""

from __future__ import annotations

import copy
import itertools
import re
from collections import Counter
from typing import Any

from shepherd.kube import Outcome, Result

_uids = itertools.count(1)
_SET_TERM = re.compile(r"([^,=\s]+)\s+in\s+\(([^)]*)\)")


def _selector(selector: str) -> dict[str, set[str]]:
    """Equality (``k=v``) and set-based (``k in (a,b)``) terms: the values each key may have."""
    wanted = {key: set(values.split(",")) for key, values in _SET_TERM.findall(selector)}
    for term in _SET_TERM.sub("", selector).split(","):
        if "=" in term:
            key, value = term.split("=", 1)
            wanted[key.strip()] = {value.strip()}
    return wanted


class FakeKube:
    def __init__(self, absent_groups: tuple[str, ...] = ()) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, ns, name)
        self.absent_groups = absent_groups
        self.counts: Counter[str] = Counter()
        self.events: list[dict[str, Any]] = []
        self.status_patches: list[dict[str, Any]] = []
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        #: How many status patches answer 409 before one succeeds.
        self.conflicts = 0
        #: What a GET of the AgentDeployment returns (for the conflict path).
        self.owner: dict[str, Any] | None = None

    @property
    def writes(self) -> int:
        return sum(v for k, v in self.counts.items() if k != "GET")

    def _absent(self, api_version: str) -> bool:
        return api_version.split("/")[0] in self.absent_groups

    async def list(self, api_version, plural, namespace, selector):
        self.counts["GET"] += 1
        if self._absent(api_version):
            return Result(Outcome.NOT_FOUND, 404, None, "the server could not find the requested resource")
        wanted = _selector(selector)
        items = [
            copy.deepcopy(o)
            for (p, ns, _), o in self.objects.items()
            if p == plural
            and ns == namespace
            and all((o["metadata"].get("labels") or {}).get(k) in v for k, v in wanted.items())
        ]
        return Result(Outcome.OK, 200, {"items": items})

    async def get(self, api_version, plural, namespace, name):
        self.counts["GET"] += 1
        if plural == "secrets":
            data = self.secrets.get((namespace, name))
            if data is None:
                return Result(Outcome.NOT_FOUND, 404, None, "not found")
            return Result(Outcome.OK, 200, {"data": data})
        if plural == "agentdeployments" and self.owner is not None:
            return Result(Outcome.OK, 200, copy.deepcopy(self.owner))
        obj = self.objects.get((plural, namespace, name))
        return Result(Outcome.OK, 200, copy.deepcopy(obj)) if obj else Result(Outcome.NOT_FOUND, 404, None)

    async def apply(self, obj, plural, *, force=True):
        self.counts["PATCH"] += 1
        if self._absent(obj["apiVersion"]):
            return Result(Outcome.NOT_FOUND, 404, None)
        meta = obj["metadata"]
        key = (plural, meta["namespace"], meta["name"])
        stored = copy.deepcopy(obj)
        old = self.objects.get(key)
        stored["metadata"]["uid"] = old["metadata"]["uid"] if old else f"uid-{next(_uids)}"
        if obj["kind"] == "Deployment":
            stored["metadata"]["generation"] = (old["metadata"].get("generation", 0) if old else 0) + 1
            stored["spec"].setdefault("progressDeadlineSeconds", 600)  # a server-side default
        self.objects[key] = stored
        return Result(Outcome.OK, 200, copy.deepcopy(stored))

    async def create(self, obj, plural, *, field_manager="shepherd"):
        self.counts["POST"] += 1
        meta = obj["metadata"]
        if plural == "secrets":
            key = (meta["namespace"], meta["name"])
            if key in self.secrets:
                return Result(Outcome.CONFLICT, 409, None, "already exists")
            self.secrets[key] = dict(obj["data"])
            return Result(Outcome.OK, 201, {"data": dict(obj["data"])})
        raise NotImplementedError(plural)

    async def patch(self, api_version, plural, namespace, name, body, *, field_manager="shepherd"):
        """A JSON merge patch (dicts merge, None deletes)."""
        self.counts["PATCH"] += 1
        if plural == "secrets":
            data = self.secrets.setdefault((namespace, name), {})
            data.update(body.get("data") or {})
            return Result(Outcome.OK, 200, {"data": dict(data)})
        obj = self.objects.get((plural, namespace, name))
        if obj is None:
            return Result(Outcome.NOT_FOUND, 404, None)
        _merge(obj, copy.deepcopy(body))
        return Result(Outcome.OK, 200, copy.deepcopy(obj))

    async def delete(self, api_version, plural, namespace, name, uid):
        self.counts["DELETE"] += 1
        if self.objects.pop((plural, namespace, name), None) is None:
            return Result(Outcome.NOT_FOUND, 404, None)
        return Result(Outcome.OK, 200, {})

    async def patch_status(self, api_version, plural, namespace, name, status, resource_version=None):
        self.counts["PATCH"] += 1
        if self.conflicts:
            self.conflicts -= 1
            return Result(Outcome.CONFLICT, 409, None, "the object has been modified")
        self.status_patches.append(status)
        return Result(Outcome.OK, 200, {})

    async def apply_status(self, api_version, kind, plural, namespace, name, status):
        self.counts["PATCH"] += 1
        self.status_patches.append(status)
        return Result(Outcome.OK, 200, {})

    async def create_event(self, namespace, event):
        self.counts["POST"] += 1
        self.events.append(event)
        return Result(Outcome.OK, 201, event)

    def mark_deployment_ready(self, namespace: str, name: str) -> None:
        dep = self.objects[("deployments", namespace, name)]
        n = dep["spec"].get("replicas", 1)
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": n,
            "readyReplicas": n,
            "updatedReplicas": n,
            "availableReplicas": n,
        }


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
