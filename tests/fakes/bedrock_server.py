"""A fake AWS Bedrock runtime for Claude: the anthropic SDK's `AsyncAnthropicBedrock` talks to it.

POST /model/{modelId}/invoke answers the Messages API JSON; /invoke-with-response-stream answers the
same events framed as AWS event-stream messages (`application/vnd.amazon.eventstream`, each a `chunk`
whose `bytes` are the base64 JSON event), as Bedrock does. Every request must carry a valid SigV4
signature (service `bedrock`) of the fake's access key, checked with botocore's own signer; a bad or
missing one gets Bedrock's 403. Errors carry `x-amzn-ErrorType` as Bedrock's do. Faults, replies and
limits: tests/fakes/control.py (a malformed stream is a frame with a corrupt checksum).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from collections.abc import AsyncIterator
from typing import Any

from agent_service.llm.routes import Credentials, ModelRoute, ProviderName
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as AwsCredentials
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.anthropic_server import answer_claude, events
from tests.fakes.control import FakeServer, FakeState, control_routes, counted

ACCESS_KEY, SECRET_KEY = "AKIDFAKEBEDROCK", "fake-bedrock-secret-key"
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([^,]+), Signature=([0-9a-f]+)")  # fmt: skip
_ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def bedrock_error(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = _ERROR_TYPES.get(status, "InternalServerException")
    return JSONResponse(
        {"message": text}, status_code=status, headers={"x-amzn-ErrorType": kind, **(headers or {})}
    )


def _signature_problem(request: Request, body: bytes, region: str) -> str | None:
    match = _AUTH.fullmatch(request.headers.get("authorization", ""))
    if match is None:
        return "Missing or malformed SigV4 Authorization header"
    access_key, _, signed_region, service, signed_headers, signature = match.groups()
    if access_key != ACCESS_KEY:
        return f"The security token included in the request is invalid ({access_key})"
    if (signed_region, service) != (region, "bedrock"):
        return f"Credential should be scoped to {region}/bedrock, not {signed_region}/{service}"
    url = f"http://{request.headers['host']}{request.scope['raw_path'].decode()}"
    headers = {name: request.headers[name] for name in signed_headers.split(";")}
    aws_request = AWSRequest(method=request.method, url=url, headers=headers, data=body)
    aws_request.context["timestamp"] = request.headers["x-amz-date"]
    token = request.headers.get("x-amz-security-token")
    signer = SigV4Auth(AwsCredentials(ACCESS_KEY, SECRET_KEY, token), "bedrock", region)
    expected = signer.signature(
        signer.string_to_sign(aws_request, signer.canonical_request(aws_request)), aws_request
    )
    return (
        None
        if expected == signature
        else "The request signature we calculated does not match the signature you provided"
    )


def _frame(payload: bytes, headers: dict[str, str], corrupt: bool = False) -> bytes:
    """One AWS event-stream message: prelude, CRC, string headers, payload, message CRC."""
    encoded = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    checksum = binascii.crc32(message) ^ (0xFFFFFFFF if corrupt else 0)
    return message + struct.pack(">I", checksum)


async def _event_stream(answer: dict[str, Any], malformed: bool) -> AsyncIterator[bytes]:
    headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    for index, item in enumerate(events(answer)):
        payload = json.dumps({"bytes": base64.b64encode(json.dumps(item).encode()).decode()}).encode()
        yield _frame(payload, headers, corrupt=malformed and index == 0)
        if malformed:
            return


def create_app(state: FakeState, region: str) -> Starlette:
    async def invoke(request: Request) -> Response:
        body_bytes = await request.body()
        if problem := _signature_problem(request, body_bytes, region):
            return bedrock_error(403, problem)
        body = json.loads(body_bytes)
        if "anthropic_version" not in body:
            return bedrock_error(400, "anthropic_version is required")
        path = request.scope["raw_path"].decode()
        model = path.split("/")[2]
        stream = path.endswith("/invoke-with-response-stream")

        def framed(answer: dict[str, Any], malformed: bool) -> Response:
            return StreamingResponse(
                _event_stream(answer, malformed), media_type="application/vnd.amazon.eventstream"
            )

        return await answer_claude(request, state, body, model, stream, framed, bedrock_error)

    routes = [
        Route("/model/{model:str}/invoke", counted(state, invoke), methods=["POST"]),
        Route("/model/{model:str}/invoke-with-response-stream", counted(state, invoke), methods=["POST"]),
    ]
    return Starlette(routes=[*routes, *control_routes(state)])


class FakeBedrock(FakeServer):
    def __init__(self, region: str = "us-east-1") -> None:
        state = FakeState()
        self.region = region
        super().__init__(create_app(state, region), state, "fake-bedrock")

    def route(self, model: str, *, secret_key: str = SECRET_KEY) -> ModelRoute:
        """A chain entry for `model` at this fake, signing with the fake's keys (or a wrong secret)."""
        credentials = Credentials(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret_key)
        return ModelRoute(ProviderName.bedrock, model, self.url, region=self.region, credentials=credentials)
