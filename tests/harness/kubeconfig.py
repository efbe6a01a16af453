"""Kubeconfig files for the local control plane's users."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca: Path,
    user: str,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    token: str | None = None,
) -> Path:
    credentials: dict[str, str] = {}
    if client_cert and client_key:
        credentials = {"client-certificate": str(client_cert), "client-key": str(client_key)}
    elif token:
        credentials = {"token": token}
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "shepherd-local", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "shepherd-local", "context": {"cluster": "shepherd-local", "user": user}}],
        "current-context": "shepherd-local",
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
