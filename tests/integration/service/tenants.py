"""Services with JWT auth on, and tokens of a tenant's user for them."""

from __future__ import annotations

import time

import jwt

SECRET = "integration-tenants-secret-0123456789abcdef"
AUTH = {"AUTH_JWT_SECRET": SECRET, "AUTH_ISSUER": "https://idp.test", "AUTH_AUDIENCE": "agent-service"}


def token(tenant: str) -> str:
    claims = {"sub": f"user-of-{tenant}", "tenant": tenant, "iss": AUTH["AUTH_ISSUER"]}
    claims |= {"aud": AUTH["AUTH_AUDIENCE"], "exp": int(time.time()) + 600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def bearer(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(tenant)}"}
