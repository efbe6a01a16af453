"""Run webhooks: where they may go, how they are signed, and their delivery from any replica.

Destinations (``WEBHOOK_ALLOWED_HOSTS``, from ``spec.webhooks.allowedHosts``): with the list empty,
any host whose addresses are all public, over https. Listed hosts, IPs and CIDRs are then the only
destinations, and only they may use plain http or resolve to loopback, private, link-local, shared
or metadata addresses — the usual server-side request forgery targets. A URL is checked when the
run is created (422 naming ``webhook``) and again, with a fresh DNS lookup, when it is delivered;
the delivery connects to the address it checked (the host name still goes in Host and TLS SNI), so
a DNS answer that changes in between cannot redirect it.

Delivery: when a run ends, the queue's ``finish`` schedules its webhook in the same atomic step
(``webhooks`` zset, see ``agent_service.runs.queue``). Every replica's dispatcher takes due
deliveries under a short lease, POSTs the run and its result (LangGraph Server's payload: the run,
``values``, ``error``, ``run_ended_at``, ``webhook_sent_at``), and retries failures with exponential
backoff up to ``WEBHOOK_MAX_ATTEMPTS``. A delivery whose replica dies mid-request is retried after
its lease, so a receiver may see a delivery twice in that case: ``X-Shepherd-Delivery`` (the run id)
lets it drop the duplicate. Signature: ``X-Shepherd-Signature: sha256=<hex>``, the HMAC-SHA256 of
``<X-Shepherd-Timestamp>.<body>`` with ``WEBHOOK_SECRET``. Outcomes are counted in
``agent_webhook_deliveries_total{outcome}``; a failing webhook never changes the run.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from redis.exceptions import RedisError

from agent_service.observability.metrics import WEBHOOK_DELIVERIES
from agent_service.serialization import dumps, now_iso
from agent_service.state import atomic

if TYPE_CHECKING:
    from agent_service.runs.engine import RunEngine

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*\.?$"
)
#: Names of cloud metadata services (their addresses are link-local, refused anyway).
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
MAX_URL_LENGTH = 2048
POLL_SECONDS = 1.0
BACKOFF_SECONDS = (1, 5, 30, 120, 600)
FORGET_RETRY_SECONDS = (0.2, 0.5, 1, 2, 4, 8)


class WebhookRefusedError(ValueError):
    """The webhook URL is malformed or its destination is not allowed; the message says why."""


@dataclass(frozen=True)
class Allowed:
    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.hosts or self.networks)

    def lists_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts or ((ip := _ip(host)) is not None and self.lists_ip(ip))

    def lists_ip(self, ip: IPAddress) -> bool:
        return any(ip in network for network in self.networks)


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def parse_allowed(entries: Iterable[str]) -> Allowed:
    hosts, networks = set(), []
    for entry in entries:
        text = entry.strip().lower()
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
            continue
        except ValueError:
            pass
        if not _HOSTNAME.match(text):
            raise ValueError(f"{entry!r} is not a host name, an IP address or a CIDR")
        hosts.add(text.rstrip("."))
    return Allowed(frozenset(hosts), tuple(networks))


@dataclass(frozen=True)
class Destination:
    """A checked webhook target: connect to ``address``, name ``host``."""

    url: str
    host: str
    address: IPAddress


class WebhookPolicy:
    def __init__(self, allowed: Allowed) -> None:
        self.allowed = allowed

    def check_url(self, url: str) -> tuple[str, str]:
        """(scheme, host) of a well-formed, permitted URL; WebhookRefusedError otherwise (no DNS)."""
        if len(url) > MAX_URL_LENGTH:
            raise WebhookRefusedError(f"longer than {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise WebhookRefusedError(f"not a valid URL: {error}") from None
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise WebhookRefusedError("must be an absolute http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise WebhookRefusedError("must not carry credentials (sign with the webhook secret instead)")
        if port == 0:
            raise WebhookRefusedError("port 0 is not a destination")
        listed = self.allowed.lists_host(host)
        if self.allowed and not listed:
            raise WebhookRefusedError(
                f"host {host} is not in the allowed webhook hosts (spec.webhooks.allowedHosts)"
            )
        if parts.scheme == "http" and not listed:
            raise WebhookRefusedError("plain http:// is only allowed for listed hosts; use https://")
        if host in METADATA_HOSTS and not listed:
            raise WebhookRefusedError(f"host {host} is a cloud metadata service")
        if (ip := _ip(host)) is not None:
            self._check_address(host, ip, listed)
        return parts.scheme, host

    def _check_address(self, host: str, ip: IPAddress, listed: bool) -> None:
        if not ip.is_global and not listed and not self.allowed.lists_ip(ip):
            raise WebhookRefusedError(
                f"{host} resolves to {ip}, a loopback, private, link-local or metadata address; "
                "list it in spec.webhooks.allowedHosts to allow it"
            )

    async def resolve(self, url: str, *, must_resolve: bool) -> Destination | None:
        """The checked destination of ``url``; None if it does not resolve and ``must_resolve`` is false."""
        _, host = self.check_url(url)
        listed = self.allowed.lists_host(host)
        port = urlsplit(url).port or 443
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            if must_resolve:
                raise WebhookRefusedError(f"host {host} does not resolve: {error}") from None
            return None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        for address in addresses:
            self._check_address(host, address, listed)
        return Destination(url, host, addresses[0])


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _pinned(destination: Destination) -> str:
    """The URL with its host replaced by the checked address."""
    parts = urlsplit(destination.url)
    address = f"[{destination.address}]" if destination.address.version == 6 else str(destination.address)
    netloc = address + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


# KEYS: webhooks zset, tries hash. ARGV: now lease_ms count. Returns member, tries so far... of the
# deliveries due now, each leased (rescheduled to now + lease) to the caller.
_TAKE_DUE = """
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  redis.call('ZADD', KEYS[1], now + lease, member)
  table.insert(out, member)
  table.insert(out, redis.call('HINCRBY', KEYS[2], member, 1))
end
return out
"""


class WebhookDispatcher:
    def __init__(self, engine: RunEngine, policy: WebhookPolicy) -> None:
        self.engine = engine
        self.policy = policy
        settings = engine.settings
        self.secret = settings.webhook_secret.get_secret_value().encode() if settings.webhook_secret else None
        self.timeout = settings.webhook_timeout_seconds
        self.max_attempts = settings.webhook_max_attempts
        self._due = engine.keys.control("q", "webhooks")
        self._tries = engine.keys.control("q", "webhook-tries")
        self._take = engine.client.register_script(_TAKE_DUE)
        self._kick = asyncio.Event()
        self._http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)

    def kick(self) -> None:
        """A run with a webhook just ended here: look now rather than at the next poll."""
        self._kick.set()

    async def serve(self) -> None:
        try:
            while True:
                try:
                    await self.deliver_due()
                except Exception as error:  # Redis away: try again at the next poll
                    log.warning("webhook dispatcher: %s", error)
                self._kick.clear()
                try:
                    async with asyncio.timeout(POLL_SECONDS):
                        await self._kick.wait()
                except TimeoutError:
                    pass
        finally:
            await self._http.aclose()

    async def deliver_due(self) -> None:
        lease_ms = int((self.timeout + 5) * 1000)
        flat = await self._take(
            keys=[self._due, self._tries], args=[time.time_ns() // 1_000_000, lease_ms, 16]
        )
        jobs = [(flat[i].decode(), int(flat[i + 1])) for i in range(0, len(flat), 2)]
        for failure in await asyncio.gather(*(self._deliver(m, t) for m, t in jobs), return_exceptions=True):
            if isinstance(failure, Exception):
                log.warning("webhook delivery bookkeeping failed (retried at its lease): %s", failure)

    async def _deliver(self, member: str, tries: int) -> None:
        run_id, _, thread_id = member.partition("|")
        outcome = await self._send(thread_id, run_id)
        if outcome in ("delivered", "refused", "gone") or tries >= self.max_attempts:
            await self._forget(member)
            WEBHOOK_DELIVERIES.labels("failed" if outcome in ("retried", "gone") else outcome).inc()
            if outcome == "retried":
                log.error("webhook of run %s failed %d times; giving up", run_id, tries)
            return
        WEBHOOK_DELIVERIES.labels("retried").inc()
        delay = BACKOFF_SECONDS[min(tries - 1, len(BACKOFF_SECONDS) - 1)]
        await self.engine.client.zadd(self._due, {member: time.time_ns() // 1_000_000 + delay * 1000})

    async def _forget(self, member: str) -> None:
        """Done with a delivery. Retried through a Redis outage: forgetting a sent webhook only at the
        next lease would send it again."""
        for delay in (*FORGET_RETRY_SECONDS, None):
            try:
                await atomic.execute(
                    self.engine.client, [("ZREM", self._due, member), ("HDEL", self._tries, member)]
                )
                return
            except RedisError:
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    async def _send(self, thread_id: str, run_id: str) -> str:
        record = await self.engine.runs.find(thread_id, run_id)
        if record is None or not record["kwargs"].get("webhook"):
            return "gone"  # expired or deleted (e.g. the thread was deleted) before delivery
        url = record["kwargs"]["webhook"]
        try:
            destination = await self.policy.resolve(url, must_resolve=True)
        except WebhookRefusedError as refusal:
            log.error("webhook of run %s refused at delivery: %s", run_id, refusal)
            return "refused"
        assert destination is not None
        body = dumps(await self._payload(record))
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Host": destination.host + (f":{urlsplit(url).port}" if urlsplit(url).port else ""),
            "User-Agent": "shepherd-agent-service",
            "X-Shepherd-Delivery": run_id,
            "X-Shepherd-Timestamp": timestamp,
        }
        if self.secret:
            headers["X-Shepherd-Signature"] = signature(self.secret, timestamp, body)
        try:
            response = await self._http.post(
                _pinned(destination),
                content=body,
                headers=headers,
                extensions={"sni_hostname": destination.host},
            )
        except httpx.HTTPError as error:
            log.warning("webhook of run %s to %s failed: %s", run_id, destination.host, error)
            return "retried"
        if response.is_success:
            return "delivered"
        log.warning("webhook of run %s answered %d", run_id, response.status_code)
        return "retried"

    async def _payload(self, record: dict[str, Any]) -> dict[str, Any]:
        values = await self.engine.runs.result(record["thread_id"], record["run_id"])
        if isinstance(values, dict) and "__error__" in values:
            values = None
        payload = {
            **public_run(record),
            "run_ended_at": record.get("ended_at"),
            "webhook_sent_at": now_iso(),
            "values": values,
        }
        if record.get("error"):
            payload["error"] = record["error"]
        return payload


def public_run(record: dict[str, Any]) -> dict[str, Any]:
    """A run record as the API shows it (without the engine's own bookkeeping)."""
    return {k: v for k, v in record.items() if k not in ("assistant", "temporary", "tenant", "error")}
