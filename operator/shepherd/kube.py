"""The one Kubernetes API wrapper: async HTTP, typed outcomes, a count of reads and writes.

Every call the operator makes goes through ``KubeClient.request``. It maps 404, 409 and 422 (and
403) to ``Outcome`` values instead of exceptions, so callers decide what each means, and it never
hides drift: a 409 from an apply with ``force`` cannot happen, a 409 anywhere else is returned.
A 429 is retried a few times in place (honouring ``Retry-After``); transport errors, 5xx and
persistent 429s raise ``KubeError`` (the handler turns that into a kopf retry).

At most ``max_connections`` requests are in flight; the others wait on ``shepherd.lanes.Slots``,
not in httpx's pool: httpcore 1.0 rescans every queued request against every connection on each
request start and finish, so 500 resources reconciled at once (2,500 queued LISTs on a restart)
kept the event loop busy for minutes in that scan (and too busy to act on SIGTERM). The slots are
served by lane: writes first, then event-driven reads, then the resync's (``shepherd.lanes``), so a
resource created during a restart's resync is not queued behind it.

Credentials come from the standard loaders of the ``kubernetes`` package (in-cluster service
account, else ``KUBECONFIG``/``~/.kube/config``); requests are made with ``httpx`` so handlers stay
async end to end without a thread pool.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from shepherd import lanes

log = logging.getLogger(__name__)

FIELD_MANAGER = "shepherd"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: How long a bearer token is reused before the configuration is asked again (tokens live for hours).
AUTH_REFRESH_SECONDS = 60.0
#: Connections to the apiserver (and requests in flight). httpcore's pool checks every connection
#: on each request start and finish (a few syscalls each, and a scan of all connections per idle
#: one), so its cost grows faster than the connection count; with 8 the operator waited on the
#: apiserver's latency (~70 ms an apply under a 500-resource burst), with 32 on that scan.
MAX_CONNECTIONS = 16
#: 429 answers retried in place (with Retry-After, at most ~4 s in all) before giving up to kopf.
THROTTLE_RETRIES = 3


class Outcome(enum.Enum):
    OK = "ok"
    NOT_FOUND = "not_found"  # 404: object absent, or its kind/CRD absent
    CONFLICT = "conflict"  # 409: exists already, or resourceVersion/uid precondition failed
    INVALID = "invalid"  # 422: the apiserver rejected the object (schema, CEL, immutable field)
    FORBIDDEN = "forbidden"  # 403: RBAC or admission said no
    BAD_REQUEST = "bad_request"  # 400


_OUTCOMES = {
    404: Outcome.NOT_FOUND,
    409: Outcome.CONFLICT,
    422: Outcome.INVALID,
    403: Outcome.FORBIDDEN,
    400: Outcome.BAD_REQUEST,
}


class KubeError(Exception):
    """A transport error or a 5xx/unexpected status: worth a retry, not a verdict on the object."""


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    status_code: int
    body: dict[str, Any] | None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


def load_configuration() -> k8s_client.Configuration:
    """In-cluster credentials when available, else the kubeconfig (``KUBECONFIG``)."""
    cfg = k8s_client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        k8s_config.load_incluster_config(client_configuration=cfg)
    else:
        k8s_config.load_kube_config(client_configuration=cfg)
    return cfg


def path_for(api_version: str, plural: str, namespace: str | None = None, name: str | None = None) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{quote(namespace)}"
    base += f"/{plural}"
    if name:
        base += f"/{quote(name)}"
    return base


class KubeClient:
    """A small async client over one connection pool. ``counts`` tallies requests by method."""

    def __init__(
        self,
        cfg: k8s_client.Configuration,
        *,
        max_connections: int = MAX_CONNECTIONS,
        timeout: float = 30,
    ) -> None:
        self._cfg = cfg
        verify = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
        if not cfg.verify_ssl:
            verify.check_hostname = False
            verify.verify_mode = ssl.CERT_NONE
        if cfg.cert_file:
            verify.load_cert_chain(cfg.cert_file, cfg.key_file)
        self._http = httpx.AsyncClient(
            base_url=cfg.host,
            verify=verify,
            timeout=httpx.Timeout(timeout, connect=10),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"Accept": "application/json", "User-Agent": "shepherd-operator"},
        )
        self.counts: Counter[str] = Counter()
        self._slots = lanes.Slots(max_connections)  # see the module docstring
        self._auth: tuple[float, dict[str, str]] | None = None

    @classmethod
    def from_environment(cls, **kwargs: Any) -> KubeClient:
        return cls(load_configuration(), **kwargs)

    async def close(self) -> None:
        await self._http.aclose()

    def _auth_headers(self) -> dict[str, str]:
        """The bearer token, asked of the configuration once per ``AUTH_REFRESH_SECONDS``: its
        refresh hook (a rotated ServiceAccount token) re-reads the environment's proxy settings
        each time, a measurable cost on every request at fleet scale."""
        now = time.monotonic()
        if self._auth is None or now - self._auth[0] >= AUTH_REFRESH_SECONDS:
            token = self._cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
            self._auth = (now, {"Authorization": token} if token else {})
        return dict(self._auth[1])

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Result:
        headers = self._auth_headers()
        content = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = json.dumps(body).encode()
        lane = lanes.Lane.WRITE if method in WRITE_METHODS else lanes.current()
        for attempt in range(THROTTLE_RETRIES + 1):
            self.counts[method] += 1
            try:
                async with self._slots.hold(lane):
                    resp = await self._http.request(
                        method, path, content=content, params=params, headers=headers
                    )
            except httpx.HTTPError as exc:
                raise KubeError(f"{method} {path}: {exc!r}") from exc
            if resp.status_code != 429 or attempt == THROTTLE_RETRIES:
                break
            # Throttled (priority & fairness) or a CRD's storage still initialising: brief backoff.
            await asyncio.sleep(min(float(resp.headers.get("Retry-After") or 1), 2.0) * (attempt + 1) / 2)
        data: dict[str, Any] | None
        try:
            data = resp.json() if resp.content else None
        except ValueError:
            data = None
        if resp.status_code < 300:
            return Result(Outcome.OK, resp.status_code, data)
        message = (data or {}).get("message", resp.text[:500]) if isinstance(data, dict) else resp.text[:500]
        outcome = _OUTCOMES.get(resp.status_code)
        if outcome is None:
            raise KubeError(f"{method} {path}: HTTP {resp.status_code}: {message}")
        return Result(outcome, resp.status_code, data, message)

    # Verbs used by the operator (and listed in shepherd.rbac).

    async def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> Result:
        return await self.request("GET", path_for(api_version, plural, namespace, name))

    async def list(self, api_version: str, plural: str, namespace: str | None, selector: str) -> Result:
        return await self.request(
            "GET", path_for(api_version, plural, namespace), params={"labelSelector": selector}
        )

    async def apply(self, obj: dict[str, Any], plural: str, *, force: bool = True) -> Result:
        """Server-side apply with the one field manager; ``force`` takes over conflicting fields."""
        meta = obj["metadata"]
        return await self.request(
            "PATCH",
            path_for(obj["apiVersion"], plural, meta.get("namespace"), meta["name"]),
            body=obj,
            params={"fieldManager": FIELD_MANAGER, "force": "true" if force else "false"},
            content_type="application/apply-patch+yaml",
        )

    async def scale(
        self,
        api_version: str,
        plural: str,
        namespace: str,
        name: str,
        replicas: int,
        *,
        field_manager: str = FIELD_MANAGER,
    ) -> Result:
        """Server-side apply ``replicas`` through the ``scale`` subresource (nothing else changes)."""
        scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": replicas}}
        return await self._apply_to(api_version, plural, namespace, name, "scale", scale, field_manager)

    async def _apply_to(
        self,
        api_version: str,
        plural: str,
        namespace: str,
        name: str,
        subresource: str,
        body: dict[str, Any],
        field_manager: str = FIELD_MANAGER,
    ) -> Result:
        """Server-side apply (forced) of ``body`` to a subresource of one object."""
        return await self.request(
            "PATCH",
            f"{path_for(api_version, plural, namespace, name)}/{subresource}",
            body={**body, "metadata": {"name": name, "namespace": namespace}},
            params={"fieldManager": field_manager, "force": "true"},
            content_type="application/apply-patch+yaml",
        )

    async def create(self, obj: dict[str, Any], plural: str, *, field_manager: str = FIELD_MANAGER) -> Result:
        """POST: creates ``obj`` or answers CONFLICT when it exists (create-only, never overwrites)."""
        meta = obj["metadata"]
        return await self.request(
            "POST",
            path_for(obj["apiVersion"], plural, meta.get("namespace")),
            body=obj,
            params={"fieldManager": field_manager},
        )

    async def patch(
        self,
        api_version: str,
        plural: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        field_manager: str = FIELD_MANAGER,
    ) -> Result:
        """JSON merge patch of ``body`` (``None`` deletes a key)."""
        return await self.request(
            "PATCH",
            path_for(api_version, plural, namespace, name),
            body=body,
            params={"fieldManager": field_manager},
            content_type="application/merge-patch+json",
        )

    async def delete(
        self, api_version: str, plural: str, namespace: str, name: str, uid: str | None
    ) -> Result:
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if uid:
            body["preconditions"] = {"uid": uid}
        return await self.request("DELETE", path_for(api_version, plural, namespace, name), body=body)

    async def patch_status(
        self,
        api_version: str,
        plural: str,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> Result:
        """Merge-patch ``status``; with ``resource_version`` a concurrent change gives CONFLICT."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self.request(
            "PATCH",
            path_for(api_version, plural, namespace, name) + "/status",
            body=body,
            content_type="application/merge-patch+json",
        )

    async def apply_status(
        self, api_version: str, kind: str, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> Result:
        """Server-side apply of ``status`` (the ``status`` subresource) as the one field manager:
        only the fields sent are ours, so no precondition is needed against other writers of other
        fields (the budget watcher's conditions, kopf's annotations)."""
        body = {"apiVersion": api_version, "kind": kind, "status": status}
        return await self._apply_to(api_version, plural, namespace, name, "status", body)

    async def create_event(self, namespace: str, event: dict[str, Any]) -> Result:
        return await self.request("POST", path_for("v1", "events", namespace), body=event)
