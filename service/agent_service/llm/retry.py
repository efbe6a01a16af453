"""Which provider errors are worth retrying, and how long to wait before the next attempt."""

from __future__ import annotations

import random
from dataclasses import dataclass

import anthropic
import openai

from agent_service.llm.errors import ProviderUnavailableError, StreamBrokenError

# 408/409 are transient by Anthropic's docs; 429 and every 5xx (incl. 529 overloaded) too.
_RETRYABLE_4XX = frozenset({408, 409, 429})
# The provider refuses *us* (key revoked, no access, model not deployed there): another entry of the
# chain may well answer, so these move on to it (and count against the entry's circuit), unretried.
_REFUSED_US = frozenset({401, 403, 404})
# Both official SDKs share one error hierarchy shape (Stainless); every check covers both.
STATUS_ERRORS = (anthropic.APIStatusError, openai.APIStatusError)
TIMEOUT_ERRORS = (anthropic.APITimeoutError, openai.APITimeoutError, TimeoutError)
CONNECTION_ERRORS = (anthropic.APIConnectionError, openai.APIConnectionError)
#: Errors after which the next entry of the chain is tried.
PROVIDER_ERRORS = (
    anthropic.APIError,
    openai.APIError,
    TimeoutError,
    StreamBrokenError,
    ProviderUnavailableError,
)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 8.0

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to sleep before retry number `attempt` (1-based), or None to stop retrying this model.

        A random delay in the upper half of an exponential ceiling (base * 2**(attempt-1), capped at
        backoff_max): growing, yet replicas hit by the same outage do not retry in lock-step. A server's
        retry-after is a floor we always honour; one longer than backoff_max ends the retries (the fallback
        model, or the caller with Retry-After, serves better than a request parked for minutes).
        """
        if attempt > self.max_retries or (retry_after is not None and retry_after > self.backoff_max):
            return None
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        jittered = (rng or random).uniform(ceiling / 2, ceiling)
        return max(jittered, retry_after or 0.0)


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, (*TIMEOUT_ERRORS, *CONNECTION_ERRORS, StreamBrokenError)):
        return True
    if isinstance(error, STATUS_ERRORS):
        return error.status_code >= 500 or error.status_code in _RETRYABLE_4XX
    return False


def refuses_us(error: BaseException) -> bool:
    """The provider turned this entry away (not the request): fall back, count it on the circuit."""
    return isinstance(error, ProviderUnavailableError) or (
        isinstance(error, STATUS_ERRORS) and error.status_code in _REFUSED_US
    )


def retry_after_seconds(error: BaseException) -> float | None:
    """The server's retry-after (seconds or ms header), if the error carries a response."""
    response = getattr(error, "response", None)
    if response is None:
        return None
    headers = response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return float(headers[name]) / scale
        except (KeyError, ValueError):
            continue
    return None


def outcome_of(error: BaseException) -> str:
    """The `outcome` label of agent_llm_requests_total for a failed attempt."""
    if isinstance(error, TIMEOUT_ERRORS):
        return "timeout"
    if isinstance(error, STATUS_ERRORS) and error.status_code == 429:
        return "rate_limited"
    return "error"
