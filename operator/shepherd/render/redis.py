"""Managed Redis: a one-replica StatefulSet (AOF on a PVC, redis_exporter sidecar), a headless
Service, a NetworkPolicy, and optionally a backup CronJob with its PVC.

Locked down by default: the ``default`` user is disabled (no password, no commands), each client
has its own ACL user whose password is a key of the generated Secret ``<name>-redis-auth`` (see
``shepherd.credentials``; the passwords reach ``redis-server`` through ``$(VAR)`` expansion of
environment variables from that Secret, so no Pod spec holds one):

* ``agent``: every key and channel, every command except ``@admin`` and ``@dangerous`` (no
  CONFIG, ACL, DEBUG, SHUTDOWN, MONITOR, FLUSHALL, KEYS...);
* ``exporter``: no key access, only the read-only introspection redis_exporter uses (INFO,
  CONFIG GET, SLOWLOG, LATENCY, CLIENT LIST); the probes use it too;
* ``backup``: no key access, only the replication handshake ``redis-cli --rdb`` needs.

Protected mode stays on as a second line. ``maxmemory`` is derived from the container's memory
limit, with ``noeviction``: a full Redis refuses writes (the service answers 503) instead of
silently evicting conversations.

Restore (``backup.restoreFrom``): an init container fills an *empty* data volume from a snapshot
before Redis starts (``latest``: the newest, if there is one yet; a file name: that one, or the
Pod does not start). Redis 7 with AOF on ignores a lone ``dump.rdb`` and starts empty, so the
snapshot is installed as the base file of a multi-part AOF (``appendonlydir/`` with a manifest
naming it), which Redis loads as it would its own. A volume with data is never touched.

Nothing is rendered for an external Redis; the applier prunes what a previous managed setting left
(the data and backup PVCs and the password Secret stay).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from shepherd.api import AgentDeployment, ManagedRedis, SecretKeyRef
from shepherd.render.common import (
    AGENT_COMPONENT,
    BACKUP_COMPONENT,
    REDIS_AGENT_USER,
    REDIS_BACKUP_USER,
    REDIS_COMPONENT,
    REDIS_EXPORTER_PORT,
    REDIS_EXPORTER_USER,
    REDIS_PORT,
    REDIS_TLS_CA_KEY,
    REDIS_TLS_CERT_KEY,
    REDIS_TLS_KEY_KEY,
    REDIS_USERS,
    backup_claim_name,
    backup_name,
    labels,
    metadata,
    redis_auth_name,
    redis_name,
    selector_labels,
)
from shepherd.render.secret_hash import NO_DIGESTS, SecretDigests, annotate
from shepherd.render.service_env import redis_tls_refs
from shepherd.render.workload import restricted_security_context

REDIS_UID = 999  # the redis user of the official image
DATA_DIR = "/data"
BACKUP_DIR = "/backup"
TLS_DIR = "/tls"
#: Share of the memory limit given to the dataset: the rest covers the copy-on-write of the AOF
#: rewrite's fork, client buffers and allocator fragmentation, so Redis refuses writes before the
#: kernel kills it.
MAXMEMORY_SHARE = Decimal("0.75")
#: Environment variable holding each ACL user's password in the redis container.
PASSWORD_VARIABLES = {user: f"REDIS_{user.upper()}_PASSWORD" for user in REDIS_USERS}
#: redis-cli reads the password from here (so it is not in argv); the probes use the exporter user.
REDISCLI_AUTH = "REDISCLI_AUTH"

_ACL = {
    REDIS_AGENT_USER: ["~*", "&*", "+@all", "-@admin", "-@dangerous"],
    REDIS_EXPORTER_USER: [
        "resetkeys", "resetchannels", "-@all", "+ping", "+hello", "+select", "+info", "+config|get",
        "+client|list", "+client|setname", "+slowlog|get", "+slowlog|len", "+latency|latest",
        "+cluster|info",
    ],
    REDIS_BACKUP_USER: [
        "resetkeys", "resetchannels", "-@all", "+ping", "+hello", "+replconf", "+sync", "+psync",
    ],
}  # fmt: skip

RESTORE_SCRIPT = """set -eu
if [ -e "$DATA_DIR/appendonlydir" ] || [ -e "$DATA_DIR/dump.rdb" ]; then
  echo "restore: $DATA_DIR holds data, nothing restored"; exit 0
fi
if [ "$RESTORE_FROM" = latest ]; then
  snapshot=$(ls -1 "$BACKUP_DIR"/dump-*.rdb 2>/dev/null | sort | tail -n 1)
  if [ -z "$snapshot" ]; then
    echo "restore: no snapshot in $BACKUP_DIR yet, starting empty"; exit 0
  fi
else
  snapshot="$BACKUP_DIR/$RESTORE_FROM"
fi
if [ ! -f "$snapshot" ]; then
  echo "restore: no snapshot $RESTORE_FROM in $BACKUP_DIR" >&2; exit 1
fi
mkdir -p "$DATA_DIR/.restore"
cp "$snapshot" "$DATA_DIR/.restore/appendonly.aof.1.base.rdb"
echo "file appendonly.aof.1.base.rdb seq 1 type b" > "$DATA_DIR/.restore/appendonly.aof.manifest"
mv "$DATA_DIR/.restore" "$DATA_DIR/appendonlydir"
echo "restore: $DATA_DIR filled from $snapshot"
"""

BACKUP_SCRIPT = """set -eu
name="dump-$(date -u +%Y%m%dT%H%M%SZ).rdb"
partial="$BACKUP_DIR/.$name.partial"
redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --user {user} --no-auth-warning {tls}--rdb "$partial"
mv "$partial" "$BACKUP_DIR/$name"
ls -1 "$BACKUP_DIR"/dump-*.rdb | sort -r | tail -n +$((RETENTION + 1)) | while read -r old; do
  rm -f "$old"
done
echo "backup: $name written, $RETENTION kept"
"""


def _managed(resource: AgentDeployment) -> ManagedRedis:
    managed = resource.spec.redis.managed
    assert managed is not None
    return managed


def maxmemory_bytes(managed: ManagedRedis) -> int:
    """``MAXMEMORY_SHARE`` of the container's memory limit (required by the CRD)."""
    return int(parse_quantity(managed.resources.limits["memory"]) * MAXMEMORY_SHARE)


def secret_refs(resource: AgentDeployment) -> list[SecretKeyRef]:
    """The Secret keys the Redis Pod reads (its template hashes their values)."""
    auth = [SecretKeyRef(name=redis_auth_name(resource), key=user) for user in REDIS_USERS]
    return auth + redis_tls_refs(resource)


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _password_env(resource: AgentDeployment, user: str, name: str | None = None) -> dict[str, Any]:
    return _secret_env(name or PASSWORD_VARIABLES[user], redis_auth_name(resource), user)


def _tls_cli_args(managed: ManagedRedis) -> list[str]:
    return ["--tls", "--cacert", f"{TLS_DIR}/{REDIS_TLS_CA_KEY}"] if managed.tls else []


def redis_args(managed: ManagedRedis) -> list[str]:
    args = [
        "--dir", DATA_DIR, "--appendonly", "yes", "--appendfsync", "everysec",
        "--protected-mode", "yes",
        "--maxmemory", str(maxmemory_bytes(managed)), "--maxmemory-policy", "noeviction",
    ]  # fmt: skip
    if managed.tls:
        args += [
            "--port", "0", "--tls-port", str(REDIS_PORT),
            "--tls-cert-file", f"{TLS_DIR}/{REDIS_TLS_CERT_KEY}",
            "--tls-key-file", f"{TLS_DIR}/{REDIS_TLS_KEY_KEY}",
            "--tls-ca-cert-file", f"{TLS_DIR}/{REDIS_TLS_CA_KEY}",
            "--tls-auth-clients", "no",  # clients authenticate with their ACL password
        ]  # fmt: skip
    else:
        args += ["--port", str(REDIS_PORT)]
    args += ["--user", "default", "off", "resetpass", "resetkeys", "resetchannels", "-@all"]
    for user, rules in _ACL.items():
        args += ["--user", user, "on", f">$({PASSWORD_VARIABLES[user]})", *rules]
    return args


def _probe(managed: ManagedRedis) -> dict[str, Any]:
    command = ["redis-cli", "-h", "127.0.0.1", "-p", str(REDIS_PORT), *_tls_cli_args(managed)]
    command += ["--user", REDIS_EXPORTER_USER, "--no-auth-warning", "ping"]
    return {"exec": {"command": command}, "timeoutSeconds": 2}


def _resources(managed: ManagedRedis) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if managed.resources.requests:
        out["requests"] = {k: str(v) for k, v in sorted(managed.resources.requests.items())}
    out["limits"] = {k: str(v) for k, v in sorted(managed.resources.limits.items())}
    return out


def _redis_container(resource: AgentDeployment) -> dict[str, Any]:
    managed = _managed(resource)
    probe = _probe(managed)
    env = [_password_env(resource, user) for user in REDIS_USERS]
    env.append(_password_env(resource, REDIS_EXPORTER_USER, REDISCLI_AUTH))
    mounts = [{"name": "data", "mountPath": DATA_DIR}]
    if managed.tls:
        mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
    return {
        "name": "redis",
        "image": managed.image,
        "command": ["redis-server"],
        "args": redis_args(managed),
        "env": env,
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": {**probe, "periodSeconds": 5},
        "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 6},
        "resources": _resources(managed),
        "securityContext": restricted_security_context(),
        "volumeMounts": mounts,
    }


def _exporter_container(resource: AgentDeployment) -> dict[str, Any]:
    managed = _managed(resource)
    scheme = "rediss" if managed.tls else "redis"
    env = [
        {"name": "REDIS_ADDR", "value": f"{scheme}://127.0.0.1:{REDIS_PORT}"},
        {"name": "REDIS_USER", "value": REDIS_EXPORTER_USER},
        _password_env(resource, REDIS_EXPORTER_USER, "REDIS_PASSWORD"),
    ]
    if managed.tls:
        # Loopback inside the Pod: the certificate names the Service, not 127.0.0.1.
        env.append({"name": "REDIS_EXPORTER_SKIP_TLS_VERIFICATION", "value": "true"})
    return {
        "name": "redis-exporter",
        "image": managed.exporter_image,
        "env": env,
        "ports": [{"name": "metrics", "containerPort": REDIS_EXPORTER_PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": restricted_security_context(),
    }


def _restore_container(resource: AgentDeployment) -> dict[str, Any]:
    managed = _managed(resource)
    assert managed.backup is not None
    assert managed.backup.restore_from
    return {
        "name": "restore",
        "image": managed.image,
        "command": ["sh", "-c", RESTORE_SCRIPT],
        "env": [
            {"name": "RESTORE_FROM", "value": managed.backup.restore_from},
            {"name": "DATA_DIR", "value": DATA_DIR},
            {"name": "BACKUP_DIR", "value": BACKUP_DIR},
        ],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": restricted_security_context(),
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "backup", "mountPath": BACKUP_DIR, "readOnly": True},
        ],
    }


def _backup_claim(resource: AgentDeployment) -> str:
    backup = _managed(resource).backup
    assert backup is not None
    return backup.existing_claim or backup_claim_name(resource)


def _pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": REDIS_UID,
        "runAsGroup": REDIS_UID,
        "fsGroup": REDIS_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _tls_volume(managed: ManagedRedis) -> list[dict[str, Any]]:
    return [{"name": "tls", "secret": {"secretName": managed.tls.secret_name}}] if managed.tls else []


def statefulset(resource: AgentDeployment, secrets: SecretDigests = NO_DIGESTS) -> dict[str, Any]:
    managed = _managed(resource)
    name = redis_name(resource)
    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(managed.storage)}},
    }
    if managed.storage_class_name:
        pvc_spec["storageClassName"] = managed.storage_class_name
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": _pod_security_context(),
        "terminationGracePeriodSeconds": 30,
        "containers": [_redis_container(resource), _exporter_container(resource)],
    }
    volumes = _tls_volume(managed)
    if managed.backup is not None and managed.backup.restore_from:
        pod_spec["initContainers"] = [_restore_container(resource)]
        volumes.append({"name": "backup", "persistentVolumeClaim": {"claimName": _backup_claim(resource)}})
    if volumes:
        pod_spec["volumes"] = volumes
    kept = "Delete" if managed.delete_data_with_resource else "Retain"
    template_meta: dict[str, Any] = {"labels": labels(resource, REDIS_COMPONENT)}
    if secrets.redis:
        template_meta["annotations"] = annotate({}, secrets.redis)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(resource, name, REDIS_COMPONENT),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(resource, REDIS_COMPONENT)},
            # The data outlives the resource unless asked otherwise: a mistaken delete loses nothing.
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": kept, "whenScaled": "Retain"},
            "template": {"metadata": template_meta, "spec": pod_spec},
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data", "labels": labels(resource, REDIS_COMPONENT)},
                    "spec": pvc_spec,
                }
            ],
        },
    }


def headless_service(resource: AgentDeployment) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(resource, redis_name(resource), REDIS_COMPONENT),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(resource, REDIS_COMPONENT),
            "ports": [
                {"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"},
                {"name": "metrics", "port": REDIS_EXPORTER_PORT, "targetPort": "metrics", "protocol": "TCP"},
            ],
        },
    }


def network_policy(resource: AgentDeployment) -> dict[str, Any]:
    """Always rendered: Redis is reachable from this deployment's agent (and backup) Pods only, and
    its exporter port from the monitoring namespaces; anything else is dropped (where a network
    plugin enforces NetworkPolicies)."""
    clients = [
        {"podSelector": {"matchLabels": selector_labels(resource, AGENT_COMPONENT)}},
        {"podSelector": {"matchLabels": selector_labels(resource, BACKUP_COMPONENT)}},
    ]
    ingress: list[dict[str, Any]] = [
        {"from": clients, "ports": [{"port": "redis", "protocol": "TCP"}]},
    ]
    monitoring = resource.spec.network_policy.monitoring_namespaces
    if monitoring:
        scrapers = [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}} for ns in monitoring
        ]
        ingress.append({"from": scrapers, "ports": [{"port": "metrics", "protocol": "TCP"}]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(resource, redis_name(resource), REDIS_COMPONENT),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(resource, REDIS_COMPONENT)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def backup_pvc(resource: AgentDeployment) -> dict[str, Any]:
    """The backup volume, owned (deleted with the resource) only with ``deleteDataWithResource``."""
    managed = _managed(resource)
    backup = managed.backup
    assert backup is not None
    meta = metadata(resource, backup_claim_name(resource), BACKUP_COMPONENT)
    if not managed.delete_data_with_resource:
        del meta["ownerReferences"]
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(backup.storage)}},
    }
    if backup.storage_class_name:
        spec["storageClassName"] = backup.storage_class_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def backup_cronjob(resource: AgentDeployment) -> dict[str, Any]:
    """``redis-cli --rdb``: Redis' own snapshot (the RDB a replica would get), streamed to the backup
    volume as ``dump-<UTC time>.rdb``; the oldest beyond ``retention`` are removed. Its Pod runs on
    the Redis Pod's node, so a ReadWriteOnce backup volume can be mounted by both (for a restore)."""
    managed = _managed(resource)
    backup = managed.backup
    assert backup is not None
    tls = " ".join(_tls_cli_args(managed))
    container: dict[str, Any] = {
        "name": "backup",
        "image": managed.image,
        "command": ["sh", "-c", BACKUP_SCRIPT.format(user=REDIS_BACKUP_USER, tls=f"{tls} " if tls else "")],
        "env": [
            {"name": "REDIS_HOST", "value": f"{redis_name(resource)}.{resource.namespace}.svc"},
            {"name": "REDIS_PORT", "value": str(REDIS_PORT)},
            _password_env(resource, REDIS_BACKUP_USER, REDISCLI_AUTH),
            {"name": "BACKUP_DIR", "value": BACKUP_DIR},
            {"name": "RETENTION", "value": str(backup.retention)},
        ],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": restricted_security_context(),
        "volumeMounts": [{"name": "backup", "mountPath": BACKUP_DIR}],
    }
    volumes = [{"name": "backup", "persistentVolumeClaim": {"claimName": _backup_claim(resource)}}]
    if managed.tls:
        container["volumeMounts"].append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
        volumes += [
            {
                "name": "tls",
                "secret": {
                    "secretName": managed.tls.secret_name,
                    "items": [{"key": REDIS_TLS_CA_KEY, "path": REDIS_TLS_CA_KEY}],
                },
            }
        ]
    affinity = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": selector_labels(resource, REDIS_COMPONENT)},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }
    cron_spec: dict[str, Any] = {
        "schedule": backup.schedule,
        "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "spec": {
                "backoffLimit": 2,
                "template": {
                    "metadata": {"labels": labels(resource, BACKUP_COMPONENT)},
                    "spec": {
                        "restartPolicy": "Never",
                        "automountServiceAccountToken": False,
                        "securityContext": _pod_security_context(),
                        "affinity": affinity,
                        "containers": [container],
                        "volumes": volumes,
                    },
                },
            }
        },
    }
    if backup.time_zone:
        cron_spec["timeZone"] = backup.time_zone
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(resource, backup_name(resource), BACKUP_COMPONENT),
        "spec": cron_spec,
    }


def render(resource: AgentDeployment, secrets: SecretDigests = NO_DIGESTS) -> list[dict[str, Any]]:
    managed = resource.spec.redis.managed
    if managed is None:
        return []
    objs = [headless_service(resource), network_policy(resource), statefulset(resource, secrets)]
    if managed.backup is not None:
        if not managed.backup.existing_claim:
            objs.append(backup_pvc(resource))
        objs.append(backup_cronjob(resource))
    return objs
