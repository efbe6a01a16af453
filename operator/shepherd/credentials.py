"""The managed Redis' passwords: generated once, kept in a Secret the AgentDeployment owns.

Renderers are pure, so a random value cannot come from them. It is created here, exactly once:
``ensure`` reads ``<name>-redis-auth``; when it is absent it POSTs it (create-only: a concurrent
creator gets 409 and the existing Secret is read instead), and when keys are missing (an ACL user
added by a newer operator, or a key deleted on purpose to rotate it) it adds only those. An
existing value is never overwritten. Values come from ``secrets.token_hex`` (256 bits, URL-safe,
so they can sit in a ``redis://user:password@`` URL unescaped).

The values never appear in status, logs or Events: the Secret is only written here, read back
as data for the Pods' secrets digest, and referenced from Pod specs by ``secretKeyRef``.
Deleting a key rotates that user's password: the next reconcile writes a new one, and the changed
digest rolls both the Redis Pod (which takes the ACL from its arguments) and the agent Pods.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping

from shepherd.api import AgentDeployment
from shepherd.kube import KubeClient, KubeError, Outcome
from shepherd.render.common import REDIS_COMPONENT, REDIS_USERS, metadata, redis_auth_name

#: The writer of generated values (server-side apply of the children never touches ``data``).
FIELD_MANAGER = "shepherd-credentials"


def _generated(keys: list[str]) -> dict[str, str]:
    return {key: base64.b64encode(secrets.token_hex(32).encode()).decode() for key in keys}


async def ensure(client: KubeClient, resource: AgentDeployment) -> Mapping[str, str]:
    """The Secret's data (base64 values) once every ACL user has a password."""
    name = redis_auth_name(resource)
    got = await client.get("v1", "secrets", resource.namespace, name)
    if got.outcome is Outcome.NOT_FOUND:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata(resource, name, REDIS_COMPONENT),
            "type": "Opaque",
            "data": _generated(list(REDIS_USERS)),
        }
        created = await client.create(body, "secrets", field_manager=FIELD_MANAGER)
        if created.ok:
            return (created.body or body)["data"]
        if created.outcome is not Outcome.CONFLICT:
            raise KubeError(
                f"create Secret {resource.namespace}/{name}: {created.status_code} {created.message}"
            )
        got = await client.get("v1", "secrets", resource.namespace, name)
    if not got.ok:
        raise KubeError(f"get Secret {resource.namespace}/{name}: {got.status_code} {got.message}")
    data = dict((got.body or {}).get("data") or {})
    missing = [user for user in REDIS_USERS if not data.get(user)]
    if not missing:
        return data
    patched = await client.patch(
        "v1", "secrets", resource.namespace, name, {"data": _generated(missing)}, field_manager=FIELD_MANAGER
    )
    if not patched.ok:
        raise KubeError(f"patch Secret {resource.namespace}/{name}: {patched.status_code} {patched.message}")
    return (patched.body or {}).get("data") or {}
