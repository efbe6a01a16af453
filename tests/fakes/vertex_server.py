"""A fake Google Vertex AI endpoint for Claude, with its OAuth token endpoint: the anthropic SDK's
`AsyncAnthropicVertex` talks to it, with google-auth minting tokens from a service account key.

POST /token takes google-auth's signed JWT assertion (RS256, checked against the service account's
public key) and issues an access token. POST /v1/projects/{p}/locations/{r}/publishers/anthropic/
models/{model}:rawPredict (JSON) and :streamRawPredict (SSE) answer like the Messages API for a
bearer token the fake issued; others get Google's 401. Errors have Google's shape. Faults, replies and
limits: tests/fakes/control.py.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from typing import Any

import jwt
from agent_service.llm.routes import Credentials, ModelRoute, ProviderName
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.anthropic_server import answer_claude, sse_events
from tests.fakes.control import FakeServer, FakeState, control_routes, counted

_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip
_PREFIX = "/v1/projects/"
#: The audience google-auth signs its assertions for, whatever the key's token_uri (Google's own).
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def google_error(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": status, "message": text, "status": _STATUS.get(status, "UNKNOWN")}}
    return JSONResponse(body, status_code=status, headers=headers)


class FakeVertex(FakeServer):
    def __init__(self, project: str = "fake-project", region: str = "us-east5") -> None:
        self.project, self.region = project, region
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_email = f"agent@{project}.iam.gserviceaccount.com"
        self.tokens: set[str] = set()
        state = FakeState()
        super().__init__(self._app(state), state, "fake-vertex")

    def service_account_json(self) -> str:
        """A service account key whose token_uri is this fake (what a Secret would hold)."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": self.project,
                "private_key_id": "fake-key-1",
                "private_key": pem,
                "client_email": self.client_email,
                "client_id": "1",
                "token_uri": f"{self.url}/token",
            }
        )

    def route(self, model: str) -> ModelRoute:
        credentials = Credentials(google_credentials=self.service_account_json())
        return ModelRoute(
            ProviderName.vertex, model, f"{self.url}/v1", region=self.region, project_id=self.project,
            credentials=credentials,
        )  # fmt: skip

    def _app(self, state: FakeState) -> Starlette:
        async def token(request: Request) -> Response:
            form = urllib.parse.parse_qs((await request.body()).decode())
            try:
                claims = jwt.decode(
                    form["assertion"][0],
                    self._key.public_key(),
                    algorithms=["RS256"],
                    audience=GOOGLE_TOKEN_AUDIENCE,
                )
            except (KeyError, jwt.PyJWTError) as error:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": str(error)}, status_code=400
                )
            if claims.get("iss") != self.client_email:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "unknown issuer"}, status_code=400
                )
            issued = f"ya29.fake-{uuid.uuid4().hex}"
            self.tokens.add(issued)
            return JSONResponse({"access_token": issued, "expires_in": 3600, "token_type": "Bearer"})

        async def predict(request: Request) -> Response:
            if request.headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
                return google_error(401, "Request had invalid authentication credentials.")
            path = request.scope["raw_path"].decode()
            place, _, action = path.removeprefix(_PREFIX).rpartition(":")
            project, _, region, _, _, _, model = place.split("/")
            if (project, region) != (self.project, self.region):
                return google_error(404, f"no such location projects/{project}/locations/{region}")
            body = await request.json()
            if "anthropic_version" not in body or "model" in body:
                return google_error(400, "anthropic_version is required and model is in the URL")

            def sse(answer: dict[str, Any], malformed: bool) -> Response:
                return StreamingResponse(sse_events(answer, malformed), media_type="text/event-stream")

            stream = action == "streamRawPredict"
            return await answer_claude(request, state, body, model, stream, sse, google_error)

        routes = [
            Route("/token", token, methods=["POST"]),
            Route(_PREFIX + "{rest:path}", counted(state, predict), methods=["POST"]),
        ]
        return Starlette(routes=[*routes, *control_routes(state)])
