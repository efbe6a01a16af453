"""Every authentication rule over HTTP on the real app: 401s (with challenge), JWKS keys, open probes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.app_client import app_client
from tests.fakes.prom import scrape

SECRET = "integration-secret-0123456789abcdef"
ISSUER, AUDIENCE = "https://idp.test", "agent-service"
ROUTE = "/assistants/{assistant_id}"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {"sub": "alice", "tenant": "acme", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, **overrides}
    return {k: v for k, v in values.items() if v is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


HS256_SETTINGS = {"auth_jwt_secret": SECRET, "auth_issuer": ISSUER, "auth_audience": AUDIENCE}


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("missing", {}),
        ("not bearer", {"Authorization": "Basic YWxpY2U6cHc="}),
        ("garbage", bearer("garbage")),
        ("wrong key", bearer(jwt.encode(claims(), "x" * 40, algorithm="HS256"))),
        ("expired", bearer(jwt.encode(claims(exp=int(time.time()) - 60), SECRET, algorithm="HS256"))),
        ("alg none", bearer(jwt.encode(claims(), None, algorithm="none"))),
        ("wrong issuer", bearer(jwt.encode(claims(iss="https://evil.test"), SECRET, algorithm="HS256"))),
        ("wrong audience", bearer(jwt.encode(claims(aud="other-app"), SECRET, algorithm="HS256"))),
        ("no tenant", bearer(jwt.encode(claims(tenant=None), SECRET, algorithm="HS256"))),
    ],
)
async def test_bad_credentials_get_401(redis_url: str, case: str, headers: dict[str, str]) -> None:
    async with app_client(redis_url, **HS256_SETTINGS) as (app, client):
        before = (await scrape(app)).value("agent_http_requests_total", route=ROUTE, method="GET", code="401")
        response = await client.get("/assistants/agent", headers=headers)

        assert response.status_code == 401, case
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
        assert response.headers["x-content-type-options"] == "nosniff", "security headers on refusals too"
        assert response.headers["x-request-id"]
        after = (await scrape(app)).value("agent_http_requests_total", route=ROUTE, method="GET", code="401")
        assert after == before + 1


async def test_valid_token_is_served_and_probes_need_none(redis_url: str) -> None:
    async with app_client(redis_url, **HS256_SETTINGS) as (_, client):
        token = jwt.encode(claims(), SECRET, algorithm="HS256")
        assert (await client.get("/assistants/agent", headers=bearer(token))).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200


async def test_auth_off_serves_anonymous_callers(redis_url: str) -> None:
    async with app_client(redis_url) as (_, client):
        assert (await client.get("/assistants/agent")).status_code == 200


class _Jwks:
    """An identity provider's JWKS endpoint on a loopback port."""

    def __init__(self, public_jwk: dict[str, Any]) -> None:
        body = json.dumps({"keys": [public_jwk]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks(rsa_key: rsa.RSAPrivateKey) -> Iterator[_Jwks]:
    public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    server = _Jwks({**public_jwk, "kid": "k1", "alg": "RS256", "use": "sig"})
    yield server
    server.server.shutdown()


async def test_jwks_mode_accepts_provider_tokens_only(
    redis_url: str, jwks: _Jwks, rsa_key: rsa.RSAPrivateKey
) -> None:
    settings = {"auth_jwks_url": jwks.url, "auth_issuer": ISSUER, "auth_audience": AUDIENCE}
    good = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims(), stranger_key, algorithm="RS256", headers={"kid": "k1"})
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Algorithm confusion: an HMAC token keyed with the (public) RSA key must not verify.
    confused = _hmac_token_with_key(public_pem)
    expired = jwt.encode(claims(exp=int(time.time()) - 60), rsa_key, algorithm="RS256", headers={"kid": "k1"})

    async with app_client(redis_url, **settings) as (_, client):
        assert (await client.get("/assistants/agent", headers=bearer(good))).status_code == 200
        for token in (forged, confused, expired):
            assert (await client.get("/assistants/agent", headers=bearer(token))).status_code == 401


def _hmac_token_with_key(key: bytes) -> str:
    """pyjwt refuses to HMAC-sign with a PEM key, so build the HS256 token by hand."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'kid': 'k1'}).encode())}.{b64(json.dumps(claims()).encode())}"
    )
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"
