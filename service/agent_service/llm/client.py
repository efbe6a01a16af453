"""One resilient way to call an LLM, used by every model call of the service (and of its gateway).

A call goes: response cache (deterministic calls, opt-in) -> budget reservation of its worst case
(before anything is sent; released once the call is over, llm/budget.py) -> concurrency slot -> for
each entry of the fallback chain, whichever its provider: context fit (trim or refuse) -> circuit
breaker -> attempt with a deadline -> retries with backoff on retryable errors.
Every attempt is measured (agent_llm_* metrics labelled with the provider and model that answered,
an OpenTelemetry span) and its usage charged. When every entry fails, the configured degraded reply
answers instead (marked on the request context: see `degrade`), or the error is raised.
Requests and answers are Anthropic Messages shapes whatever the provider (llm/providers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from anthropic.types import Message, RawMessageStreamEvent
from opentelemetry import trace
from redis.asyncio import Redis

from agent_service.llm.budget import BudgetPolicy, Estimate, TokenBudget, estimate_tokens
from agent_service.llm.cache import ResponseCache
from agent_service.llm.circuit import CircuitBreaker, CircuitPolicy, CircuitRegistry
from agent_service.llm.errors import (
    AllModelsFailedError,
    CircuitOpenError,
    ContextTooLongError,
    ProviderRequestError,
    StreamBrokenError,
)
from agent_service.llm.fit import Overflow, fit, input_limit
from agent_service.llm.pricing import Usage, cost_usd
from agent_service.llm.providers import EventStream, Provider, build_provider
from agent_service.llm.retry import (
    PROVIDER_ERRORS,
    STATUS_ERRORS,
    RetryPolicy,
    is_retryable,
    outcome_of,
    refuses_us,
    retry_after_seconds,
)
from agent_service.llm.routes import ModelRoute
from agent_service.llm.stream import MessageAccumulator, message_events, text_message
from agent_service.observability.context import RequestContext, current_request
from agent_service.observability.metrics import LLM_DURATION, LLM_REQUESTS, TTFT, record_llm_usage

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)
T = TypeVar("T")
#: The `model` of a degraded answer (no model answered it).
DEGRADED_MODEL = "shepherd-degraded"
#: RequestContext.degraded of a run answered with the degraded reply: its agent_runs_total reason.
DEGRADED_REASON = "llm_unavailable"


@dataclass(frozen=True)
class LLMConfig:
    routes: tuple[ModelRoute, ...]  # primary first, then the fallbacks in order
    timeout_seconds: float = 60.0
    max_tokens: int = 1024
    max_concurrency: int = 16
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    circuit: CircuitPolicy = field(default_factory=CircuitPolicy)
    budget: BudgetPolicy = field(default_factory=BudgetPolicy)
    overflow: Overflow = Overflow.trim
    degraded_reply: str | None = None
    cache_ttl_seconds: int = 0  # 0: no response cache


class _NoCircuit:
    """The stub's stand-in breaker: always closed, never exported."""

    def try_acquire(self) -> bool:
        return True

    def record_success(self) -> None: ...
    def record_failure(self) -> None: ...
    def release(self) -> None: ...


class ResilientLLM:
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
        for route in config.routes:  # export every circuit (closed) from the start, not after first use
            if route.has_circuit:
                self.circuits.get(route.circuit)
        self.budget = TokenBudget(config.budget, redis, key_prefix)
        self.cache = ResponseCache(
            redis, key_prefix, config.cache_ttl_seconds, tuple(r.circuit for r in config.routes)
        )
        self._providers: dict[ModelRoute, Provider] = {
            route: build_provider(route, config.timeout_seconds) for route in config.routes
        }
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._sleep = sleep

    def breaker(self, route: ModelRoute) -> CircuitBreaker | _NoCircuit:
        return self.circuits.get(route.circuit) if route.has_circuit else _NoCircuit()

    async def create(self, params: dict[str, Any]) -> Message:
        """A complete (non-streamed) message; `params` are the Messages API's, without `model`."""
        request = current_request()
        key = self.cache.key(request.tenant, params)
        if (cached := await self.cache.get(key)) is not None:  # costs nothing: no budget needed
            return cached
        async with self.budget.reserve(request, self._estimate(params)), self._slots:
            try:
                message = await self._first_route_that_answers(
                    params, lambda route, fitted: self._create_once(route, fitted, request)
                )
            except AllModelsFailedError as error:
                return self.degrade(error, request)
        await self.cache.put(key, message)
        return message

    async def stream(self, params: dict[str, Any]) -> AsyncIterator[RawMessageStreamEvent]:
        """The raw stream events of the first entry that answers.

        Retries and fallbacks happen only until the stream's first event: after that, tokens have reached
        the caller and a failure is raised (and counted against the entry's circuit) instead.
        """
        request = current_request()
        started = time.perf_counter()
        key = self.cache.key(request.tenant, params)
        if (cached := await self.cache.get(key)) is not None:
            for item in message_events(cached):
                yield item
            return
        async with self.budget.reserve(request, self._estimate(params)), self._slots:
            try:
                opened = await self._first_route_that_answers(
                    params, lambda route, fitted: self._open_stream(route, fitted, request)
                )
            except AllModelsFailedError as error:
                for item in message_events(self.degrade(error, request)):
                    yield item
                return
            answer = MessageAccumulator()
            first_token_seen = False
            try:
                answer.observe(opened.first)
                yield opened.first
                async for item in opened.events:
                    opened.usage.observe(item)
                    answer.observe(item)
                    if not first_token_seen and item.type == "content_block_delta":
                        first_token_seen = True
                        TTFT.observe(time.perf_counter() - started)
                    yield item
            except Exception as error:
                self.breaker(opened.attempt.route).record_failure()
                await opened.attempt.failed(error, opened.usage.total())
                raise
            except BaseException:  # the consumer stopped reading early: not the provider's fault
                await opened.attempt.succeeded(opened.usage.total())
                raise
            else:
                await opened.attempt.succeeded(opened.usage.total())
            finally:
                await opened.stream.close()
        await self.cache.put(key, answer.message())

    def _estimate(self, params: dict[str, Any]) -> Estimate:
        """The worst case the budget reserves: the estimated input, max_tokens out, the dearest entry."""
        routes = self.config.routes
        return Estimate(
            estimate_tokens(json.dumps(params, default=str)),
            int(params.get("max_tokens") or self.config.max_tokens),
            tuple(r.model for r in routes),
            {r.model: r.price for r in routes if r.price is not None},
        )

    def degrade(self, error: AllModelsFailedError, request: RequestContext) -> Message:
        """The degraded reply when one is configured (else `error`), marking the request context.

        The mark is the contract with the run engine: a run whose context has `degraded` set (to
        DEGRADED_REASON) ended with a degraded answer; the engine reports it as a failed run with that
        reason, a bad event of the availability SLI, although the caller received the reply.
        """
        if self.config.degraded_reply is None:
            raise error
        log.warning("every model failed; answering with the degraded reply: %s", error)
        request.degraded = DEGRADED_REASON
        return text_message(self.config.degraded_reply, DEGRADED_MODEL)

    async def _first_route_that_answers(
        self, params: dict[str, Any], attempt: Callable[[ModelRoute, dict[str, Any]], Awaitable[T]]
    ) -> T:
        errors: dict[str, Exception] = {}
        for route in self.config.routes:
            limit = input_limit(route.model, route.max_input_tokens)
            try:
                fitted, dropped = fit(params, route.model, limit, self.config.overflow)
            except ContextTooLongError as error:
                errors[route.circuit] = error
                continue
            if dropped:
                log.info(
                    "dropped the %d oldest messages to fit %s's %d input tokens", dropped, route.model, limit
                )
            try:
                return await self._with_retries(route, lambda r=route, p=fitted: attempt(r, p))
            except ProviderRequestError:
                raise  # the request itself is wrong: another model would refuse it too
            except (CircuitOpenError, *PROVIDER_ERRORS) as error:
                # An open circuit is counted (outcome circuit_open) and logged once, when it opened.
                level = logging.DEBUG if isinstance(error, CircuitOpenError) else logging.WARNING
                log.log(level, "%s unavailable, trying the next entry: %s", route.circuit, error)
                errors[route.circuit] = error
        if all(isinstance(e, ContextTooLongError) for e in errors.values()):
            raise next(iter(errors.values()))
        raise AllModelsFailedError(errors, retry_after=_soonest_retry(errors.values()))

    async def _with_retries(self, route: ModelRoute, attempt: Callable[[], Awaitable[T]]) -> T:
        breaker = self.breaker(route)
        number = 0
        while True:
            number += 1
            if not breaker.try_acquire():
                LLM_REQUESTS.labels(route.provider, route.model, "circuit_open").inc()
                raise CircuitOpenError(breaker.name, breaker.retry_after())  # type: ignore[union-attr]
            try:
                result = await attempt()
            except Exception as error:
                if refuses_us(error):
                    breaker.record_failure()
                    raise
                if not is_retryable(error):
                    breaker.release()
                    if isinstance(error, STATUS_ERRORS):
                        raise ProviderRequestError(
                            f"{route.circuit}: {error.status_code} {error.message}"
                        ) from error
                    raise
                breaker.record_failure()
                delay = self.config.retry.delay(number, retry_after_seconds(error))
                if delay is None:
                    raise
                log.info(
                    "retrying %s in %.2fs after attempt %d failed: %s", route.circuit, delay, number, error
                )
                await self._sleep(delay)
                continue
            except BaseException:  # cancelled: no verdict on the provider
                breaker.release()
                raise
            breaker.record_success()
            return result

    async def _create_once(
        self, route: ModelRoute, params: dict[str, Any], request: RequestContext
    ) -> Message:
        attempt = _Attempt(self, route, request)
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                message = await self._providers[route].create(route.model, params)
        except Exception as error:
            await attempt.failed(error)
            raise
        await attempt.succeeded(_usage_from(message.usage))
        return message

    async def _open_stream(
        self, route: ModelRoute, params: dict[str, Any], request: RequestContext
    ) -> _OpenStream:
        attempt = _Attempt(self, route, request)
        stream = None
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                stream = await self._providers[route].stream(route.model, params)
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
    """One call attempt to one entry: its span, duration, outcome, tokens, cost and budget charge."""

    def __init__(self, llm: ResilientLLM, route: ModelRoute, request: RequestContext) -> None:
        self.llm, self.route, self.request = llm, route, request
        self.started = time.perf_counter()
        self.span = _tracer.start_span(
            "llm.messages",
            attributes={
                "gen_ai.system": str(route.provider),
                "gen_ai.request.model": route.model,
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
        route = self.route
        cost = cost_usd(route.model, usage, route.price)
        record_llm_usage(route.provider, route.model, usage.as_kinds(), cost)
        await self.llm.budget.charge(self.request, usage, cost, model=route.model)
        self.span.set_attributes(
            {
                "gen_ai.usage.input_tokens": usage.input,
                "gen_ai.usage.output_tokens": usage.output,
                "llm.cost_usd": cost,
            }
        )

    def _finish(self, outcome: str) -> None:
        LLM_REQUESTS.labels(self.route.provider, self.route.model, outcome).inc()
        LLM_DURATION.labels(self.route.provider, self.route.model).observe(time.perf_counter() - self.started)
        self.span.set_attribute("llm.outcome", outcome)
        self.span.end()


class _StreamUsage:
    """Token counts as the stream reports them: input in message_start, cumulative output in message_delta."""

    def __init__(self) -> None:
        self.counts = {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0}

    def observe(self, item: RawMessageStreamEvent) -> None:
        if item.type == "message_start":
            self._update(item.message.usage)
        elif item.type == "message_delta":
            self._update(item.usage)

    def _update(self, usage: Any) -> None:
        for kind, value in _usage_from(usage).as_kinds().items():
            self.counts[kind] = max(self.counts[kind], value)

    def total(self) -> Usage:
        return Usage(**self.counts)


@dataclass
class _OpenStream:
    attempt: _Attempt
    stream: EventStream
    events: AsyncIterator[RawMessageStreamEvent]
    first: RawMessageStreamEvent
    usage: _StreamUsage = field(default_factory=_StreamUsage)


async def _read_events(stream: EventStream) -> AsyncIterator[RawMessageStreamEvent]:
    """The stream's events; undecodable input becomes StreamBrokenError (retryable before the first token)."""
    iterator = aiter(stream)
    while True:
        try:
            item = await anext(iterator)
        except StopAsyncIteration:
            return
        except PROVIDER_ERRORS:
            raise
        except Exception as error:
            raise StreamBrokenError(f"unreadable stream: {error}") from error
        yield item


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
