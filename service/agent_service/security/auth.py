"""JWT bearer authentication: who is calling (user) and on behalf of which tenant.

Off unless AUTH_JWT_SECRET (HS256) or AUTH_JWKS_URL (asymmetric keys from the identity provider) is set;
then every API request needs `Authorization: Bearer <jwt>` with a valid signature, an `exp` in the future,
a `sub`, the tenant claim, and the configured `iss`/`aud`. Unsigned (`alg: none`) tokens never pass: only
the algorithms of the configured key type are accepted, which also rules out HS256-with-a-public-key tricks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request

from agent_service.observability.context import DEFAULT_TENANT, current_request
from agent_service.settings import Settings

_ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
_LEEWAY_SECONDS = 30  # tolerated clock skew between the identity provider and us
_JWKS_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Principal:
    user: str
    tenant: str
    roles: frozenset[str] = frozenset()


ANONYMOUS = Principal(user="anonymous", tenant=DEFAULT_TENANT)
ADMIN_ROLE = "admin"


class AuthError(HTTPException):
    """401 with the RFC 6750 challenge, so clients know a (new) bearer token is expected."""

    def __init__(self, description: str) -> None:
        challenge = f'Bearer error="invalid_token", error_description="{description}"'
        super().__init__(status_code=401, detail=description, headers={"WWW-Authenticate": challenge})


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.auth_enabled
        self._secret = settings.auth_jwt_secret.get_secret_value() if settings.auth_jwt_secret else None
        self._jwks = (
            jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True, lifespan=_JWKS_CACHE_SECONDS, timeout=5)
            if settings.auth_jwks_url
            else None
        )
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._tenant_claim = settings.auth_tenant_claim
        self._roles_claim = settings.auth_roles_claim

    async def authenticate(self, authorization: str | None) -> Principal:
        if not self.enabled:
            return ANONYMOUS
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("missing bearer token")
        claims = await self._verified_claims(token.strip())
        tenant = claims.get(self._tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise AuthError(f"token has no {self._tenant_claim!r} claim")
        return Principal(user=str(claims["sub"]), tenant=tenant, roles=_roles(claims.get(self._roles_claim)))

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            if self._jwks is not None:
                # PyJWKClient fetches over blocking HTTP on a cache miss: keep it off the event loop.
                key: Any = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
                algorithms = _ASYMMETRIC
            else:
                key, algorithms = self._secret, ["HS256"]
            return jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as error:
            raise AuthError(f"invalid token: {error}") from None


def _roles(claim: Any) -> frozenset[str]:
    """A roles claim as identity providers write it: a list, or one space- or comma-separated string."""
    if isinstance(claim, str):
        return frozenset(claim.replace(",", " ").split())
    if isinstance(claim, list | tuple):
        return frozenset(str(role) for role in claim)
    return frozenset()


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the caller's principal, also put on the request context (logs, budgets)."""
    principal = await request.app.state.authenticator.authenticate(request.headers.get("authorization"))
    context = current_request()
    context.user, context.tenant = principal.user, principal.tenant
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]
