"""The tool armour decorator: timeout, retries with backoff, a circuit per tool exported like the LLM ones."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from agent_service.llm.circuit import CircuitState
from agent_service.tools import ToolCircuitOpenError, ToolTimeoutError, armoured
from agent_service.tools.wrapper import tool_outcome
from langchain_core.tools import tool

from tests.fakes.prom import scrape


def unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:6]}"


async def test_a_failing_tool_is_retried_then_its_circuit_opens() -> None:
    calls: list[int] = []
    name = unique("search")

    @armoured(retries=2, backoff_base_seconds=0.001, failure_threshold=3, recovery_seconds=600, name=name)
    async def search(query: str) -> str:
        calls.append(1)
        raise ConnectionError("backend down")

    with pytest.raises(ConnectionError):
        await search("slo")
    assert len(calls) == 3, "one attempt and two retries"
    assert (await scrape()).value("agent_circuit_state", circuit=f"tool:{name}") == CircuitState.OPEN

    with pytest.raises(ToolCircuitOpenError, match=f"tool:{name} is open") as refused:
        await search("slo")
    assert len(calls) == 3, "an open circuit runs nothing"
    assert refused.value.retry_after > 0
    assert tool_outcome(refused.value) == "circuit_open"


async def test_a_hanging_tool_times_out_and_a_later_success_resets_the_count() -> None:
    answers = iter([None, "found"])

    @armoured(
        timeout_seconds=0.05, retries=1, backoff_base_seconds=0.001, failure_threshold=2, name=unique("t")
    )
    async def lookup(query: str) -> str:
        answer = next(answers)
        if answer is None:
            await asyncio.sleep(10)
        return answer

    assert await lookup("x") == "found", "the timed-out attempt was retried"

    @armoured(timeout_seconds=0.01, name=unique("t"))
    async def always_hangs() -> str:
        await asyncio.sleep(10)
        return ""

    with pytest.raises(ToolTimeoutError) as timed_out:
        await always_hangs()
    assert tool_outcome(timed_out.value) == "timeout"


async def test_errors_outside_retry_on_are_raised_at_once_and_say_nothing_about_the_dependency() -> None:
    calls: list[int] = []

    @armoured(retries=3, retry_on=(ConnectionError,), failure_threshold=1, name=unique("calc"))
    async def calc(expression: str) -> str:
        calls.append(1)
        raise ValueError("not arithmetic")

    for _ in range(2):
        with pytest.raises(ValueError, match="not arithmetic"):
            await calc("x")
    assert len(calls) == 2, "never retried, circuit still closed"


def test_sync_tools_get_retries_and_the_circuit_but_no_timeout() -> None:
    calls: list[int] = []

    @armoured(retries=1, backoff_base_seconds=0.001, name=unique("sync"))
    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("blip")
        return "ok"

    assert flaky() == "ok"
    with pytest.raises(TypeError, match="needs an async function"):
        armoured(timeout_seconds=1)(lambda: None)


async def test_the_tool_keeps_its_name_signature_and_docstring_under_tool() -> None:
    @tool
    @armoured(timeout_seconds=1)
    async def weather(city: str) -> str:
        """Today's weather in a city."""
        return f"sunny in {city}"

    assert weather.name == "weather"
    assert weather.description == "Today's weather in a city."
    assert list(weather.args) == ["city"]
    assert await weather.ainvoke({"city": "Oslo"}) == "sunny in Oslo"
    assert (await scrape()).value("agent_circuit_state", circuit="tool:weather") == CircuitState.CLOSED
