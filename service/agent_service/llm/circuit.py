"""Circuit breaker per provider+model: stop calling a model that keeps failing, probe it after a pause.

State lives in the process (each replica judges the provider from its own calls, with no extra Redis
round-trip on the hot path); every change is exported as `agent_circuit_state{circuit}`, and the
operator aggregates it across pods.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from agent_service.observability.metrics import CIRCUIT_STATE

log = logging.getLogger(__name__)


class CircuitState(IntEnum):
    """Values are the gauge's: 0 closed, 1 half-open, 2 open."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True)
class CircuitPolicy:
    failure_threshold: int = 5
    recovery_seconds: float = 30.0
    half_open_probes: int = 1


class CircuitBreaker:
    """closed --threshold consecutive failures--> open --recovery elapsed--> half-open;
    half-open admits `half_open_probes` calls: all succeed -> closed, any fails -> open again."""

    def __init__(self, name: str, policy: CircuitPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probes_started = 0
        self._probes_succeeded = 0
        CIRCUIT_STATE.labels(name).set(CircuitState.CLOSED)

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self.retry_after() == 0:
            self._move_to(CircuitState.HALF_OPEN)
        return self._state

    def retry_after(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open or already due)."""
        if self._state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.policy.recovery_seconds - self._clock())

    def try_acquire(self) -> bool:
        """May a call go out now? In half-open each admitted call is one of the limited probes."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and self._probes_started < self.policy.half_open_probes:
            self._probes_started += 1
            return True
        return False

    def record_success(self) -> None:
        if self._state is CircuitState.HALF_OPEN:
            self._probes_succeeded += 1
            if self._probes_succeeded >= self.policy.half_open_probes:
                self._move_to(CircuitState.CLOSED)
        self._failures = 0

    def record_failure(self) -> None:
        if self._state is CircuitState.HALF_OPEN:
            self._move_to(CircuitState.OPEN)
            return
        self._failures += 1
        if self._state is CircuitState.CLOSED and self._failures >= self.policy.failure_threshold:
            self._move_to(CircuitState.OPEN)

    def release(self) -> None:
        """An admitted call ended with no verdict on the provider (client error, cancelled)."""
        if self._state is CircuitState.HALF_OPEN and self._probes_started > self._probes_succeeded:
            self._probes_started -= 1

    def _move_to(self, state: CircuitState) -> None:
        level = logging.WARNING if state is CircuitState.OPEN else logging.INFO
        log.log(level, "circuit %s is %s", self.name, state.name.lower().replace("_", "-"))
        self._state = state
        self._failures = 0
        self._probes_started = self._probes_succeeded = 0
        if state is CircuitState.OPEN:
            self._opened_at = self._clock()
        CIRCUIT_STATE.labels(self.name).set(state)


class CircuitRegistry:
    """One breaker per circuit name, created on first use with the shared policy."""

    def __init__(self, policy: CircuitPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = self._breakers[name] = CircuitBreaker(name, self.policy, self._clock)
        return breaker

    def states(self) -> dict[str, CircuitState]:
        return {name: breaker.state for name, breaker in self._breakers.items()}
