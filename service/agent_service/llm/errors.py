"""Errors the LLM layer raises to the graph and, through it, to the API (which maps them to HTTP)."""

from __future__ import annotations


class LLMError(Exception):
    """Base of every error raised by the resilient model. `status_code` is the HTTP status to answer;
    `run_reason` is the `reason` label of agent_runs_total for a run that fails with it (run engine)."""

    status_code = 502
    run_reason = "llm_unavailable"
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
    """The provider refused the request itself (400, 413, 422...): no retry or fallback helps."""

    run_reason = "graph_error"


class ProviderUnavailableError(LLMError):
    """The provider could not be reached as configured (credentials unresolvable, token refresh failed):
    not retried, but the next entry of the chain is tried and the entry's circuit counts the failure."""


class ContextTooLongError(LLMError):
    """The messages do not fit the model's input limit (spec.model.maxInputTokens) and were not trimmed:
    `contextOverflow: Refuse`, or even the newest turn alone is too long. Nothing was sent."""

    status_code = 400
    run_reason = "graph_error"

    def __init__(self, model: str, estimated: int, limit: int) -> None:
        super().__init__(
            f"the request is about {estimated} input tokens, over the {limit} that {model} accepts "
            "(spec.model.maxInputTokens, less max_tokens for the answer); trim the thread or raise the limit"
        )
        self.model, self.estimated, self.limit = model, estimated, limit


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
    run_reason = "llm_rate_limited"

    def __init__(self, scope: str, limit: float, used: float, retry_after: float | None = None) -> None:
        super().__init__(f"{scope} budget exhausted: used {used:g} of {limit:g}")
        self.scope = scope
        self.limit = limit
        self.used = used
        self.retry_after = retry_after
