"""Backoff schedule and the retryable/non-retryable classification of provider errors."""

from __future__ import annotations

import random

import anthropic
import httpx2
import pytest
from agent_service.llm.errors import StreamBrokenError
from agent_service.llm.retry import RetryPolicy, is_retryable, outcome_of, retry_after_seconds

REQUEST = httpx2.Request("POST", "http://fake/v1/messages")


def status_error(status: int, headers: dict[str, str] | None = None) -> anthropic.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, request=REQUEST)
    return anthropic.APIStatusError(f"fake {status}", response=response, body=None)


def test_backoff_grows_exponentially_within_jitter_bounds_and_is_capped() -> None:
    policy = RetryPolicy(max_retries=6, backoff_base=0.5, backoff_max=4.0)
    rng = random.Random(7)
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for attempt, ceiling in enumerate(ceilings, start=1):
        for _ in range(50):
            assert ceiling / 2 <= policy.delay(attempt, rng=rng) <= ceiling


def test_jitter_spreads_delays() -> None:
    policy = RetryPolicy(max_retries=3, backoff_base=1.0, backoff_max=8.0)
    rng = random.Random(1)
    assert len({round(policy.delay(2, rng=rng), 6) for _ in range(20)}) > 10


def test_no_delay_once_retries_are_used_up() -> None:
    policy = RetryPolicy(max_retries=2)
    assert policy.delay(2) is not None
    assert policy.delay(3) is None


def test_retry_after_is_a_floor_and_too_long_a_wait_ends_retries() -> None:
    policy = RetryPolicy(max_retries=3, backoff_base=0.1, backoff_max=5.0)
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=6.0) is None


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 529])
def test_transient_statuses_are_retryable(status: int) -> None:
    assert is_retryable(status_error(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_client_errors_are_never_retried(status: int) -> None:
    assert not is_retryable(status_error(status))


def test_timeouts_connection_errors_and_broken_streams_are_retryable() -> None:
    assert is_retryable(anthropic.APITimeoutError(REQUEST))
    assert is_retryable(anthropic.APIConnectionError(request=REQUEST))
    assert is_retryable(TimeoutError())
    assert is_retryable(StreamBrokenError("bad"))
    assert not is_retryable(ValueError("a bug"))


def test_retry_after_headers_in_seconds_or_milliseconds() -> None:
    assert retry_after_seconds(status_error(429, {"retry-after": "2"})) == 2.0
    assert retry_after_seconds(status_error(429, {"retry-after-ms": "1500"})) == 1.5
    assert retry_after_seconds(status_error(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) is None
    assert retry_after_seconds(TimeoutError()) is None


def test_outcome_labels() -> None:
    assert outcome_of(status_error(429)) == "rate_limited"
    assert outcome_of(status_error(529)) == "error"
    assert outcome_of(anthropic.APITimeoutError(REQUEST)) == "timeout"
    assert outcome_of(TimeoutError()) == "timeout"
