"""One resilient way to call Anthropic's Messages API, used by every model call of the service.

A call goes: budget reservation of its worst case (before anything is sent) -> concurrency slot ->
for each model of the fallback chain: circuit breaker -> attempt with a deadline -> retries with
backoff on retryable errors.
Every attempt is measured (agent_llm_* metrics, an OpenTelemetry span) and its usage charged; the
reservation is released once the call is over (llm/budget.py).
The SDK's own retries are off (max_retries=0) so that this policy is the only one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anthropic
from anthropic.types import Message, RawMessageStreamEvent
from opentelemetry import trace
from redis.asyncio import Redis

from agent_service.llm.budget import BudgetPolicy, Estimate, TokenBudget, estimate_tokens
from agent_service.llm.circuit import CircuitPolicy, CircuitRegistry
from agent_service.llm.errors import (
    AllModelsFailedError,
    CircuitOpenError,
    ProviderRequestError,
    StreamBrokenError,
)
from agent_service.llm.pricing import Usage, cost_usd
from agent_service.llm.retry import RetryPolicy, is_retryable, outcome_of, retry_after_seconds
from agent_service.observability.context import RequestContext, current_request
from agent_service.observability.metrics import LLM_DURATION, LLM_REQUESTS, TTFT, record_llm_usage

PROVIDER = "anthropic"
log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class LLMConfig:
    models: tuple[str, ...]  # primary first, then the fallbacks in order
    api_key: str | None = None
    base_url: str | None = None
    timeout_seconds: float = 60.0
    max_tokens: int = 1024
    max_concurrency: int = 16
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    circuit: CircuitPolicy = field(default_factory=CircuitPolicy)
    budget: BudgetPolicy = field(default_factory=BudgetPolicy)


class ResilientAnthropic:
    def __init__(
        self,
        config: LLMConfig,
        *,
        redis: Redis | None = None,
        key_prefix: str = "shepherd",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.circuits = CircuitRegistry(config.circuit)
        for model in config.models:  # export every circuit (closed) from the start, not after first use
            self.circuits.get(self.circuit_name(model))
        self.budget = TokenBudget(config.budget, redis, key_prefix)
        self._client = anthropic.AsyncAnthropic(
            api_key=config.api_key, base_url=config.base_url, max_retries=0, timeout=config.timeout_seconds
        )
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._sleep = sleep

    @staticmethod
    def circuit_name(model: str) -> str:
        return f"{PROVIDER}:{model}"

    async def create(self, params: dict[str, Any]) -> Message:
        """A complete (non-streamed) message; `params` are the Messages API's, without `model`."""
        request = current_request()
        async with self.budget.reserve(request, self._estimate(params)), self._slots:
            return await self._first_model_that_answers(
                lambda model: self._create_once(model, params, request)
            )

    async def stream(self, params: dict[str, Any]) -> AsyncIterator[RawMessageStreamEvent]:
        """The SDK's raw stream events of the first model that answers.

        Retries and fallbacks happen only until the stream's first event: after that, tokens have reached
        the caller and a failure is raised (and counted against the model's circuit) instead.
        """
        request = current_request()
        started = time.perf_counter()
        async with self.budget.reserve(request, self._estimate(params)), self._slots:
            opened = await self._first_model_that_answers(
                lambda model: self._open_stream(model, params, request)
            )
            first_token_seen = False
            try:
                yield opened.first
                async for event in opened.events:
                    opened.usage.observe(event)
                    if not first_token_seen and event.type == "content_block_delta":
                        first_token_seen = True
                        TTFT.observe(time.perf_counter() - started)
                    yield event
            except Exception as error:
                self.circuits.get(self.circuit_name(opened.attempt.model)).record_failure()
                await opened.attempt.failed(error, opened.usage.total())
                raise
            except BaseException:  # the consumer stopped reading early: not the provider's fault
                await opened.attempt.succeeded(opened.usage.total())
                raise
            else:
                await opened.attempt.succeeded(opened.usage.total())
            finally:
                await opened.stream.close()

    def _estimate(self, params: dict[str, Any]) -> Estimate:
        input_tokens = estimate_tokens(json.dumps(params, default=str))
        return Estimate(
            input_tokens, int(params.get("max_tokens") or self.config.max_tokens), self.config.models
        )

    async def _first_model_that_answers(self, attempt: Callable[[str], Awaitable[T]]) -> T:
        errors: dict[str, Exception] = {}
        for model in self.config.models:
            try:
                return await self._with_retries(model, attempt)
            except ProviderRequestError:
                raise  # the request itself is wrong: another model would refuse it too
            except (CircuitOpenError, anthropic.APIError, TimeoutError, StreamBrokenError) as error:
                log.warning("model %s unavailable, trying the next one: %s", model, error)
                errors[model] = error
        raise AllModelsFailedError(errors, retry_after=_soonest_retry(errors.values()))

    async def _with_retries(self, model: str, attempt: Callable[[str], Awaitable[T]]) -> T:
        breaker = self.circuits.get(self.circuit_name(model))
        number = 0
        while True:
            number += 1
            if not breaker.try_acquire():
                LLM_REQUESTS.labels(PROVIDER, model, "circuit_open").inc()
                raise CircuitOpenError(breaker.name, breaker.retry_after())
            try:
                result = await attempt(model)
            except Exception as error:
                if not is_retryable(error):
                    breaker.release()
                    if isinstance(error, anthropic.APIStatusError):
                        raise ProviderRequestError(f"{model}: {error.status_code} {error.message}") from error
                    raise
                breaker.record_failure()
                delay = self.config.retry.delay(number, retry_after_seconds(error))
                if delay is None:
                    raise
                log.info("retrying %s in %.2fs after attempt %d failed: %s", model, delay, number, error)
                await self._sleep(delay)
                continue
            except BaseException:  # cancelled: no verdict on the provider
                breaker.release()
                raise
            breaker.record_success()
            return result

    async def _create_once(self, model: str, params: dict[str, Any], request: RequestContext) -> Message:
        attempt = _Attempt(self, model, request)
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                message = await self._client.messages.create(model=model, **params)
        except Exception as error:
            await attempt.failed(error)
            raise
        await attempt.succeeded(_usage_from(message.usage))
        return message

    async def _open_stream(self, model: str, params: dict[str, Any], request: RequestContext) -> _OpenStream:
        attempt = _Attempt(self, model, request)
        stream = None
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                stream = await self._client.messages.create(model=model, stream=True, **params)
                events = _read_events(stream)
                first = await anext(events, None)
                if first is None or first.type != "message_start":
                    raise StreamBrokenError("stream did not start with message_start")
        except Exception as error:
            if stream is not None:
                await stream.close()
            await attempt.failed(error)
            raise
        opened = _OpenStream(attempt, stream, events, first)
        opened.usage.observe(first)
        return opened


class _Attempt:
    """One call attempt to one model: its span, duration, outcome, tokens, cost and budget charge."""

    def __init__(self, llm: ResilientAnthropic, model: str, request: RequestContext) -> None:
        self.llm, self.model, self.request = llm, model, request
        self.started = time.perf_counter()
        self.span = _tracer.start_span(
            "llm.messages",
            attributes={
                "gen_ai.system": PROVIDER,
                "gen_ai.request.model": model,
                "llm.tenant": request.tenant,
            },
        )

    async def succeeded(self, usage: Usage) -> None:
        await self._charge(usage)
        self._finish("success")

    async def failed(self, error: BaseException, usage: Usage | None = None) -> None:
        if usage:
            await self._charge(usage)
        self.span.record_exception(error)
        self.span.set_status(trace.StatusCode.ERROR, str(error))
        self._finish(outcome_of(error))

    async def _charge(self, usage: Usage) -> None:
        cost = cost_usd(self.model, usage)
        record_llm_usage(PROVIDER, self.model, usage.as_kinds(), cost)
        await self.llm.budget.charge(self.request, usage, cost, model=self.model)
        self.span.set_attributes(
            {
                "gen_ai.usage.input_tokens": usage.input,
                "gen_ai.usage.output_tokens": usage.output,
                "llm.cost_usd": cost,
            }
        )

    def _finish(self, outcome: str) -> None:
        LLM_REQUESTS.labels(PROVIDER, self.model, outcome).inc()
        LLM_DURATION.labels(PROVIDER, self.model).observe(time.perf_counter() - self.started)
        self.span.set_attribute("llm.outcome", outcome)
        self.span.end()


class _StreamUsage:
    """Token counts as the stream reports them: input in message_start, cumulative output in message_delta."""

    def __init__(self) -> None:
        self.counts = {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0}

    def observe(self, event: RawMessageStreamEvent) -> None:
        if event.type == "message_start":
            self._update(event.message.usage)
        elif event.type == "message_delta":
            self._update(event.usage)

    def _update(self, usage: Any) -> None:
        for kind, value in _usage_from(usage).as_kinds().items():
            self.counts[kind] = max(self.counts[kind], value)

    def total(self) -> Usage:
        return Usage(**self.counts)


@dataclass
class _OpenStream:
    attempt: _Attempt
    stream: anthropic.AsyncStream[RawMessageStreamEvent]
    events: AsyncIterator[RawMessageStreamEvent]
    first: RawMessageStreamEvent
    usage: _StreamUsage = field(default_factory=_StreamUsage)


async def _read_events(stream: AsyncIterator[RawMessageStreamEvent]) -> AsyncIterator[RawMessageStreamEvent]:
    """The stream's events; undecodable input becomes StreamBrokenError (retryable before the first token)."""
    iterator = aiter(stream)
    while True:
        try:
            event = await anext(iterator)
        except StopAsyncIteration:
            return
        except (anthropic.APIError, TimeoutError):
            raise
        except Exception as error:
            raise StreamBrokenError(f"unreadable stream: {error}") from error
        yield event


def _usage_from(usage: Any) -> Usage:
    return Usage(
        input=usage.input_tokens or 0,
        output=usage.output_tokens or 0,
        cache_read=usage.cache_read_input_tokens or 0,
        cache_write=usage.cache_creation_input_tokens or 0,
    )


def _soonest_retry(errors: Any) -> float | None:
    waits = [
        w
        for w in (
            e.retry_after if isinstance(e, CircuitOpenError) else retry_after_seconds(e) for e in errors
        )
        if w is not None
    ]
    return min(waits, default=None)
