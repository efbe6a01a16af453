"""Secret rotation rolls the Pods: a digest of the Secret keys a Pod reads, in its template.

The kubelet reads a Secret when a container starts, so a rotated API key, JWT secret, Redis URL or
password reaches running Pods only if they restart. The reconcile reads every referenced Secret
anyway (to report a missing key); it hands their data to ``digests`` and the renderers put the
result in the Pod template (``shepherd.dev/secrets-hash``): a changed value changes the template,
which rolls the Deployment (or the Redis StatefulSet). Only a hash of the values referenced is
rendered, never a value; changing another key of the same Secret, or its labels, rolls nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shepherd.api import AgentDeployment, SecretKeyRef

SECRETS_HASH_ANNOTATION = "shepherd.dev/secrets-hash"
#: Secret name -> its ``data`` (base64 values, as the apiserver returns them).
SecretData = Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class SecretDigests:
    """Digest of the keys each Pod template reads; empty: the annotation is left out (callers that
    render without reading Secrets, e.g. the admission webhook, compare like with like)."""

    agent: str = ""
    redis: str = ""


NO_DIGESTS = SecretDigests()


def digest(refs: Iterable[SecretKeyRef], secrets: SecretData) -> str:
    """A stable hash of the referenced keys' values (a missing key hashes as absent)."""
    text = json.dumps(
        [
            [name, key, (secrets.get(name) or {}).get(key)]
            for name, key in sorted({(r.name, r.key) for r in refs})
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def digests(resource: AgentDeployment, secrets: SecretData) -> SecretDigests:
    from shepherd.render import redis, service_env  # they import this module

    return SecretDigests(
        agent=digest(service_env.agent_secret_refs(resource), secrets),
        redis=digest(redis.secret_refs(resource), secrets) if resource.spec.redis.managed else "",
    )


def annotate(annotations: dict[str, str], value: str) -> dict[str, str]:
    """``annotations`` with the digest, when there is one."""
    return {**annotations, SECRETS_HASH_ANNOTATION: value} if value else annotations
