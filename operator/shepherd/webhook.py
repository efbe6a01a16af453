"""Optional validating admission webhook: reject frozen changes at ``kubectl apply`` time.

Off unless ``SHEPHERD_WEBHOOK_ENABLED=true``. The operator serves HTTPS itself (kopf's
``WebhookServer``, handler id = the URL path, default ``validate-agentdeployment``). Two modes:

* **chart** (``SHEPHERD_WEBHOOK_SERVICE`` set, as ``charts/shepherd`` does): the chart owns the
  ``ValidatingWebhookConfiguration`` (``SHEPHERD_WEBHOOK_CONFIGURATION``) pointing at the operator's
  Service. ``SHEPHERD_WEBHOOK_CERT_MODE=selfSigned``: the operator generates a certificate for the
  Service's DNS names at start-up (``self_signed``) and patches it into the configuration's
  ``caBundle``; ``certManager``: it serves ``tls.crt``/``tls.key`` from ``SHEPHERD_WEBHOOK_CERT_DIR``.
* **url** (local runs and tests: ``SHEPHERD_WEBHOOK_HOST``, e.g. 127.0.0.1): kopf creates and keeps a
  configuration named ``shepherd.dev`` with a URL client config and the self-signed certificate.

Either way ``failurePolicy`` should be ``Ignore``: the operator-side hold (``shepherd.budget.gate``)
works without the webhook, so an operator that is down must never block edits.

The decision is the reconcile's, made early: an UPDATE whose spec changed is rejected, with the same
reason the reconcile would hold it with, when the resource is frozen (``status.freeze``), the change
is not let through (critical class, unused override) and it would change the running workload — a
change that leaves the rendered Deployment and ConfigMap as they run, or only scales, passes, and
so does a rollback to the released spec (it renders what runs). CREATE always passes.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf
from pydantic import ValidationError

from shepherd import api, apply, rollout
from shepherd.budget import policy
from shepherd.kube import KubeClient
from shepherd.render import render_all, workload
from shepherd.render.common import agent_name, config_name
from shepherd.render.monitoring import placeholder_content

log = logging.getLogger(__name__)

#: Name of the configuration kopf manages in url mode.
WEBHOOK_CONFIGURATION = "shepherd.dev"
DEFAULT_PATH = "/validate-agentdeployment"


def enabled() -> bool:
    value = os.environ.get("SHEPHERD_WEBHOOK_ENABLED", os.environ.get("SHEPHERD_WEBHOOK", "false"))
    return value.lower() in ("1", "true", "on", "yes")


def handler_id() -> str:
    """kopf routes admission requests by the URL path: the handler id is the path."""
    return os.environ.get("SHEPHERD_WEBHOOK_PATH", DEFAULT_PATH).strip("/") or DEFAULT_PATH.strip("/")


def self_signed(names: list[str], directory: Path) -> tuple[Path, Path]:
    """A self-signed serving certificate for ``names`` (IPs or DNS names); returns (cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])])
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def configure(settings: kopf.OperatorSettings) -> bytes | None:
    """Serve the webhook (no-op unless enabled); returns the CA to publish in chart selfSigned mode."""
    if not enabled():
        return None
    port = int(os.environ.get("SHEPHERD_WEBHOOK_PORT", "9443"))
    service = os.environ.get("SHEPHERD_WEBHOOK_SERVICE")
    if service:  # chart mode: the chart owns the configuration
        directory = Path(
            os.environ.get("SHEPHERD_WEBHOOK_CERT_DIR") or tempfile.mkdtemp(prefix="shepherd-webhook-")
        )
        if os.environ.get("SHEPHERD_WEBHOOK_CERT_MODE", "selfSigned") == "certManager":
            cert, key, publish = directory / "tls.crt", directory / "tls.key", None
        else:
            cert, key = self_signed([service, f"{service}.cluster.local"], directory)
            publish = cert.read_bytes()
        settings.admission.server = kopf.WebhookServer(
            addr=os.environ.get("SHEPHERD_WEBHOOK_LISTEN", "0.0.0.0"),  # in a Pod: the Service routes to it
            port=port,
            certfile=str(cert),
            pkeyfile=str(key),
        )
        return publish
    host = os.environ.get("SHEPHERD_WEBHOOK_HOST", "127.0.0.1")
    cert, key = self_signed([host], Path(tempfile.mkdtemp(prefix="shepherd-webhook-")))
    settings.admission.server = kopf.WebhookServer(
        addr=os.environ.get("SHEPHERD_WEBHOOK_LISTEN", host),
        port=port,
        host=host,
        certfile=str(cert),
        pkeyfile=str(key),
    )
    settings.admission.managed = WEBHOOK_CONFIGURATION
    return None


async def publish_ca(client: KubeClient, cert: bytes | None) -> None:
    """Chart selfSigned mode: put the certificate into the chart's configuration's ``caBundle``."""
    name = os.environ.get("SHEPHERD_WEBHOOK_CONFIGURATION")
    if cert is None or not name:
        return
    path = f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}"
    got = await client.get("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", None, name)
    if not got.ok:
        log.warning("webhook configuration %s not readable (%s): caBundle not published", name, got.message)
        return
    bundle = base64.b64encode(cert).decode()
    hooks = [
        {"name": h["name"], "clientConfig": {"caBundle": bundle}} for h in got.body.get("webhooks") or []
    ]
    res = await client.request(
        "PATCH", path, body={"webhooks": hooks}, content_type="application/strategic-merge-patch+json"
    )
    if not res.ok:
        log.warning("caBundle of %s not published: %s", name, res.message)


def rejection(
    old: Mapping[str, Any], new: Mapping[str, Any], live: Mapping[tuple[str, str], Mapping[str, Any]]
) -> str | None:
    """Why the UPDATE ``old`` -> ``new`` must be rejected, or None.

    Pure: ``live`` holds the running workload objects by (kind, name).
    """
    if (old.get("spec") or {}) == (new.get("spec") or {}):
        return None  # metadata-only edits (annotations, labels, kopf's bookkeeping) always pass
    status = old.get("status") or {}
    state = policy.PolicyState.from_status(status)
    if state.level == api.FreezeLevel.none:
        return None
    try:
        resource = api.parse(dict(new))
    except ValidationError:
        return None  # the schema (and the reconcile) report an invalid spec; not the freeze's business
    old_generation = int((old.get("metadata") or {}).get("generation", 0))
    generation = max(resource.generation, old_generation + 1)
    decision = policy.decide_hold(
        level=state.level,
        reason=state.reason,
        annotations=resource.annotations,
        generation=generation,
        released_generation=(status.get("released") or {}).get("generation"),
        overrides_used=(status.get("freeze") or {}).get("overridesUsed") or [],
        now=dt.datetime.now(dt.UTC),
    )
    if decision.held is None:
        return None
    # Compared with the running release's label: the release number is no change of its own (a
    # digest here would miss the Secrets' digests, which this check renders without).
    running = workload.release_of(live.get(("Deployment", agent_name(resource))))
    plan = rollout.Plan(release=generation if running is None else running)
    for obj in render_all(resource, placeholder_content(resource), plan=plan).workload:
        desired = apply.stamped(obj)
        current = live.get((obj["kind"], obj["metadata"]["name"]))
        if current is None or apply.contains(current, desired) or policy.scaling_only(desired, current):
            continue
        return (
            f"{resource.namespace}/{resource.name}: {decision.held}. The running release stays; "
            f"annotate {policy.CHANGE_CLASS_ANNOTATION}: critical (passes NonCritical) or "
            f'{policy.FREEZE_OVERRIDE_ANNOTATION}: "<reason>" (one rollout) to let it through.'
        )
    return None


async def live_workload(client: KubeClient, resource: api.AgentDeployment) -> dict[tuple[str, str], Any]:
    """The running Deployment and ConfigMap of ``resource`` by (kind, name) (two GETs)."""
    out: dict[tuple[str, str], Any] = {}
    for kind, api_version, plural, name in (
        ("Deployment", "apps/v1", "deployments", agent_name(resource)),
        ("ConfigMap", "v1", "configmaps", config_name(resource)),
    ):
        got = await client.get(api_version, plural, resource.namespace, name)
        if got.ok and got.body:
            out[(kind, name)] = got.body
    return out


async def validate_freeze(
    body: kopf.Body, old: Any, memo: kopf.Memo, operation: str | None = None, **_: Any
) -> None:
    if operation != "UPDATE" or not old:
        return
    new = dict(body)
    if (dict(old).get("spec") or {}) == (new.get("spec") or {}):
        return
    try:
        resource = api.parse(new)
    except ValidationError:
        return
    live = await live_workload(memo.reconciler.client, resource)
    reason = rejection(dict(old), new, live)
    if reason:
        raise kopf.AdmissionError(reason, code=403)


def register() -> None:
    """Register the handler (at import of ``shepherd.handlers``) when the webhook is enabled."""
    if enabled():
        kopf.on.validate(
            api.GROUP,
            api.VERSION,
            api.PLURAL,
            id=handler_id(),
            operations=["UPDATE"],
            ignore_failures=True,
        )(validate_freeze)
