"""Claude on the Anthropic API, AWS Bedrock and Google Vertex, each through the anthropic SDK's client.

Credentials come from the entry (Secrets); when an entry has none, Bedrock and Vertex use the
platform's default chain (IRSA / EKS Pod Identity, GKE Workload Identity), as their SDKs do.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
from anthropic.types import Message

from agent_service.llm.errors import ProviderUnavailableError
from agent_service.llm.providers import EventStream
from agent_service.llm.routes import ModelRoute, ProviderName

_CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
#: Set explicitly: the SDK would otherwise read ANTHROPIC_BASE_URL, which points the graph's own
#: clients at the gateway (llm/gateway) — the gateway must never call itself.
ANTHROPIC_API_URL = "https://api.anthropic.com"
#: Request fields the API takes that this SDK version has no argument for: sent in the body as they are.
_BODY_ONLY = ("temperature", "top_p", "top_k")


def _google_credentials(service_account_json: str) -> Any:
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_info(
        json.loads(service_account_json), scopes=[_CLOUD_PLATFORM]
    )


def claude_client(route: ModelRoute, timeout_seconds: float) -> anthropic.AsyncAnthropic | Any:
    common: dict[str, Any] = {"base_url": route.base_url, "timeout": timeout_seconds, "max_retries": 0}
    secrets = route.credentials
    if route.provider is ProviderName.bedrock:
        keys = {
            "aws_access_key": secrets.aws_access_key_id,
            "aws_secret_key": secrets.aws_secret_access_key,
            "aws_session_token": secrets.aws_session_token,
        }
        return anthropic.AsyncAnthropicBedrock(
            aws_region=route.region,
            api_key=secrets.api_key,  # a Bedrock API key (bearer) instead of SigV4, when given
            **{k: v for k, v in keys.items() if v is not None},
            **common,
        )
    if route.provider is ProviderName.vertex:
        credentials = _google_credentials(secrets.google_credentials) if secrets.google_credentials else None
        return anthropic.AsyncAnthropicVertex(
            region=route.region, project_id=route.project_id, credentials=credentials, **common
        )
    common["base_url"] = route.base_url or ANTHROPIC_API_URL
    return anthropic.AsyncAnthropic(api_key=secrets.api_key, **common)


class ClaudeProvider:
    def __init__(self, route: ModelRoute, timeout_seconds: float) -> None:
        try:
            self._client = claude_client(route, timeout_seconds)
        except Exception as error:  # e.g. no region resolvable: the entry is unusable, not the service
            self._client = None
            self._broken = f"{route.circuit}: cannot build its client: {error}"

    def _ready(self) -> Any:
        if self._client is None:
            raise ProviderUnavailableError(self._broken)
        return self._client

    async def create(self, model: str, params: dict[str, Any]) -> Message:
        return await self._call(model=model, **params)

    async def stream(self, model: str, params: dict[str, Any]) -> EventStream:
        return await self._call(model=model, stream=True, **params)

    async def _call(self, **request: Any) -> Any:
        extra = {name: request.pop(name) for name in _BODY_ONLY if name in request}
        if extra:
            request["extra_body"] = {**extra, **(request.get("extra_body") or {})}
        try:
            return await self._ready().messages.create(**request)
        except (anthropic.APIError, TypeError):
            raise
        except Exception as error:
            # Credentials that cannot be resolved or refreshed (botocore, google-auth) end up here.
            raise ProviderUnavailableError(f"{request['model']}: {error}") from error
