"""Cost of the run input limits (issue 14) against their peer, parsing the same body.

Every run request's input is walked once (``agent_service.security.input_limits.check``: string
lengths, control characters, nesting depth). Peer: ``json.loads`` of the same body, which the
request pays anyway. In-process, best of 5 repetitions of ``timeit`` loops.
"""

from __future__ import annotations

import json
import timeit

from agent_service.security import input_limits

CASES = {
    "one short message": {"messages": [{"role": "user", "content": "What is the weather in Paris?"}]},
    "one 90 KB message": {"messages": [{"role": "user", "content": "x" * 90_000}]},
    "200 messages of 400 chars": {"messages": [{"role": "user", "content": "y" * 400}] * 200},
    "nested 30 deep": {"messages": [{"content": json.loads("[" * 28 + '"deep"' + "]" * 28)}]},
}


def _best(statement, number: int) -> float:
    return min(timeit.repeat(statement, number=number, repeat=5)) / number


def run() -> str:
    lines = [
        "Per request body, microseconds (best of 5). Limits: the defaults (100,000 chars, depth 32).",
        "",
        "| run input | body size | limits check (µs) | json.loads of the body (µs) | check / parse |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, value in CASES.items():
        text = json.dumps({"assistant_id": "agent", "input": value})
        number = max(10, 20_000 // max(1, len(text) // 100))
        check = _best(lambda v=value: input_limits.check(v, "input"), number)
        parse = _best(lambda t=text: json.loads(t), number)
        lines.append(
            f"| {name} | {len(text):,} B | {check * 1e6:.1f} | {parse * 1e6:.1f} | {check / parse:.2f} |"
        )
    return "\n".join(lines)
