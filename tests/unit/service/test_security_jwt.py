"""JWT validation rules of the Authenticator (HS256 secret mode; JWKS mode is tested over HTTP)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from agent_service.security.auth import ANONYMOUS, Authenticator, AuthError, Principal
from agent_service.settings import Settings

SECRET = "s3cr3t-for-tests-0123456789abcdef-xyz"
ISSUER, AUDIENCE = "https://issuer.test", "agent-service"


def settings(**overrides: Any) -> Settings:
    values = {"auth_jwt_secret": SECRET, "auth_issuer": ISSUER, "auth_audience": AUDIENCE, **overrides}
    return Settings(**values)


def token(secret: str = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": "alice", "tenant": "acme", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, algorithm=algorithm)


async def refusal(authorization: str | None, **overrides: Any) -> str:
    with pytest.raises(AuthError) as refused:
        await Authenticator(settings(**overrides)).authenticate(authorization)
    assert refused.value.status_code == 401
    assert refused.value.headers["WWW-Authenticate"].startswith("Bearer ")
    return refused.value.detail


async def test_valid_token_gives_user_and_tenant() -> None:
    principal = await Authenticator(settings()).authenticate(f"Bearer {token()}")
    assert principal == Principal(user="alice", tenant="acme")


async def test_tenant_claim_name_is_configurable() -> None:
    authenticator = Authenticator(settings(auth_tenant_claim="org"))
    assert (await authenticator.authenticate(f"Bearer {token(org='globex')}")).tenant == "globex"


async def test_auth_is_off_unless_configured() -> None:
    assert await Authenticator(Settings()).authenticate(None) == ANONYMOUS
    assert ANONYMOUS.tenant == "default"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic YWxpY2U6cHc=", "token abc"])
async def test_missing_or_non_bearer_credentials_are_refused(header: str | None) -> None:
    assert await refusal(header) == "missing bearer token"


async def test_garbage_and_wrongly_signed_tokens_are_refused() -> None:
    assert "invalid token" in await refusal("Bearer not.a.jwt")
    assert "invalid token" in await refusal(f"Bearer {token(secret='another-secret-of-32-bytes-or-more!!')}")


async def test_expired_token_is_refused() -> None:
    assert await refusal(f"Bearer {token(exp=int(time.time()) - 120)}") == "token expired"


async def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode(
        {"sub": "alice", "tenant": "acme", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300},
        None,
        algorithm="none",
    )
    assert "invalid token" in await refusal(f"Bearer {unsigned}")


async def test_other_hmac_algorithms_are_refused() -> None:
    assert "invalid token" in await refusal(f"Bearer {token(secret=SECRET * 2, algorithm='HS512')}")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.test"}, "issuer"),
        ({"iss": None}, "iss"),
        ({"aud": "someone-else"}, "Audience"),
        ({"aud": None}, "aud"),
        ({"exp": None}, "exp"),
        ({"sub": None}, "sub"),
        ({"nbf": int(time.time()) + 3600}, "not yet valid"),
    ],
)
async def test_claim_rules(claims: dict[str, Any], reason: str) -> None:
    assert reason in await refusal(f"Bearer {token(**claims)}")


async def test_token_without_tenant_is_refused() -> None:
    assert await refusal(f"Bearer {token(tenant=None)}") == "token has no 'tenant' claim"


def test_settings_refuse_weak_secrets_and_ambiguous_modes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(auth_jwt_secret="short")
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(auth_jwt_secret="changethis-changethis-changethis-x")
    with pytest.raises(ValueError, match="not both"):
        Settings(auth_jwt_secret=SECRET, auth_jwks_url="http://idp/jwks")
    with pytest.raises(ValueError, match="AUTH_ISSUER and AUTH_AUDIENCE"):
        Settings(auth_jwks_url="http://idp/jwks")
