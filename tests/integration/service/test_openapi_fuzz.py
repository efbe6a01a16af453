"""Schema-driven fuzzing of the published OpenAPI document (schemathesis + hypothesis) against a live
service process: whatever the input, no 5xx. Bounded: a fixed number of examples per operation."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

EXAMPLES_PER_OPERATION = 12
# A run that is actually started may take its graph's time; streams are read to the end.
CALL_TIMEOUT_SECONDS = 30


def test_no_input_gets_a_5xx(redis_url: str, start_service) -> None:
    service = start_service(redis_url)
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    failures: list[str] = []
    checked = 0
    statuses: list[int] = []
    paths: set[str] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        paths.add(operation.path)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def call(case) -> None:
            response = case.call(base_url=service.url, timeout=CALL_TIMEOUT_SECONDS)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                request = f"{case.method} {case.formatted_path} {case.body!r}"
                failures.append(f"{request} -> {response.status_code}: {response.text[:200]}")

        call()
        checked += 1
    assert checked >= 30, f"only {checked} operations in the OpenAPI document"
    assert {"/a2a/{assistant_id}", "/.well-known/agent-card.json"} <= paths  # the protocols too
    assert not failures, "\n".join(failures)
    # Not hollow: many requests were sent, and both accepted and refused inputs were among them.
    assert len(statuses) >= 5 * checked
    assert any(code < 300 for code in statuses)
    assert any(400 <= code < 500 for code in statuses)
    assert service.get("/healthz").status_code == 200
