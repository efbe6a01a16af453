"""Circuit breaker state machine: closed -> open -> half-open -> closed/open, with a fake clock."""

from __future__ import annotations

import pytest
from agent_service.llm.circuit import CircuitBreaker, CircuitPolicy, CircuitState
from prometheus_client import REGISTRY


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("agent_circuit_state", {"circuit": name})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def breaker(clock: FakeClock, name: str, threshold: int = 3, probes: int = 1) -> CircuitBreaker:
    return CircuitBreaker(name, CircuitPolicy(threshold, recovery_seconds=30, half_open_probes=probes), clock)


def test_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    circuit = breaker(clock, "unit:opens")
    for _ in range(2):
        assert circuit.try_acquire()
        circuit.record_failure()
    assert circuit.state is CircuitState.CLOSED
    assert circuit.try_acquire()
    circuit.record_failure()
    assert circuit.state is CircuitState.OPEN
    assert not circuit.try_acquire()
    assert circuit.retry_after() == 30
    assert gauge("unit:opens") == 2


def test_success_resets_the_consecutive_failure_count(clock: FakeClock) -> None:
    circuit = breaker(clock, "unit:reset")
    circuit.record_failure()
    circuit.record_failure()
    circuit.record_success()
    circuit.record_failure()
    circuit.record_failure()
    assert circuit.state is CircuitState.CLOSED


def test_half_opens_after_recovery_and_admits_limited_probes(clock: FakeClock) -> None:
    circuit = breaker(clock, "unit:probes", threshold=1, probes=2)
    circuit.record_failure()
    clock.now += 29.9
    assert not circuit.try_acquire()
    clock.now += 0.1
    assert circuit.state is CircuitState.HALF_OPEN
    assert gauge("unit:probes") == 1
    assert circuit.try_acquire()
    assert circuit.try_acquire()
    assert not circuit.try_acquire(), "only two probes may be in flight"
    circuit.record_success()
    assert circuit.state is CircuitState.HALF_OPEN, "closing needs every probe to succeed"
    circuit.record_success()
    assert circuit.state is CircuitState.CLOSED
    assert gauge("unit:probes") == 0


def test_failed_probe_reopens_for_a_full_recovery_period(clock: FakeClock) -> None:
    circuit = breaker(clock, "unit:reopen", threshold=1)
    circuit.record_failure()
    clock.now += 30
    assert circuit.try_acquire()
    circuit.record_failure()
    assert circuit.state is CircuitState.OPEN
    assert circuit.retry_after() == 30
    assert gauge("unit:reopen") == 2


def test_released_probe_frees_its_slot(clock: FakeClock) -> None:
    circuit = breaker(clock, "unit:release", threshold=1)
    circuit.record_failure()
    clock.now += 30
    assert circuit.try_acquire()
    assert not circuit.try_acquire()
    circuit.release()
    assert circuit.try_acquire()
