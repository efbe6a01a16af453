"""Errors the LLM layer raises to the graph and, through it, to the API (which maps them to HTTP)."""

from __future__ import annotations


class LLMError(Exception):
    """Base of every error raised by the resilient model. `status_code` is the HTTP status to answer."""

    status_code = 502
    retry_after: float | None = None


class CircuitOpenError(LLMError):
    """The model's circuit is open: the call was not sent."""

    status_code = 503

    def __init__(self, circuit: str, retry_after: float) -> None:
        super().__init__(f"circuit {circuit} is open; retry in {retry_after:.0f}s")
        self.circuit = circuit
        self.retry_after = retry_after


class StreamBrokenError(LLMError):
    """The provider's response stream could not be read (malformed event, connection cut)."""


class ProviderRequestError(LLMError):
    """The provider refused the request itself (a 4xx other than 408/409/429): no retry or fallback helps."""


class AllModelsFailedError(LLMError):
    """Every model of the fallback chain failed or was skipped; `errors` holds each model's error."""

    status_code = 503

    def __init__(self, errors: dict[str, Exception], retry_after: float | None = None) -> None:
        detail = "; ".join(f"{model}: {error}" for model, error in errors.items())
        super().__init__(f"all models failed: {detail}")
        self.errors = errors
        self.retry_after = retry_after


class BudgetExceededError(LLMError):
    """A token or cost budget would be exceeded: refused before anything was sent (429-style)."""

    status_code = 429

    def __init__(self, scope: str, limit: float, used: float, retry_after: float | None = None) -> None:
        super().__init__(f"{scope} budget exhausted: used {used:g} of {limit:g}")
        self.scope = scope
        self.limit = limit
        self.used = used
        self.retry_after = retry_after
