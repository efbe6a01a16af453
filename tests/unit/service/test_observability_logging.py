"""PII masking and the JSON log format."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from agent_service.observability.context import RequestContext, enter_request
from agent_service.observability.logging import JsonFormatter
from agent_service.observability.pii import mask_pii


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("write to jane.doe+tag@example.co.uk now", "write to [EMAIL] now"),
        ("call +1 (415) 555-2671 today", "call [PHONE] today"),
        ("call 415-555-2671 or +44 20 7946 0958", "call [PHONE] or [PHONE]"),
        ("card 4111 1111 1111 1111 ok", "card [CARD] ok"),
        ("card 5500-0000-0000-0004", "card [CARD]"),
        ("ssn 123-45-6789.", "ssn [SSN]."),
        ("key sk-ant-api03-AbCdEf0123456789", "key [REDACTED]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [REDACTED]"),
        ("Authorization: Bearer abc.def.ghi", "Authorization: [REDACTED] [REDACTED]"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "jwt [REDACTED]"),
        (
            '{"api_key": "hunter2hunter2", "password": "pw"}',
            '{"api_key": "[REDACTED]", "password": "[REDACTED]"}',
        ),
    ],
)
def test_pii_and_secrets_are_masked(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "GET /threads/3fa85f64-5717-4562-b3fc-2c963f66afa6 200 in 12.5 ms",
        "at 2026-11-23T10:00:00.123Z from 127.0.0.1:8000",
        "run 1234567890123 order 20261123 port 8000",
        "not a card (Luhn fails) 4111111111111112",
    ],
)
def test_ids_timestamps_and_numbers_survive(text: str) -> None:
    assert mask_pii(text) == text


def record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom for bob@example.com")
        except ValueError:
            exc_info = sys.exc_info()
    log_record = logging.LogRecord(
        "agent_service.test", logging.WARNING, __file__, 1, message, args, exc_info
    )
    log_record.__dict__.update(extra)
    return log_record


def test_json_line_has_request_id_tenant_and_extras() -> None:
    enter_request(RequestContext(request_id="req-42", tenant="acme"))
    line = json.loads(JsonFormatter().format(record("run %s done", "r1", duration_ms=3.5)))
    assert line["msg"] == "run r1 done"
    assert (line["request_id"], line["tenant"], line["level"]) == ("req-42", "acme", "WARNING")
    assert line["duration_ms"] == 3.5
    assert line["ts"].endswith("+00:00")


def test_message_args_extras_and_exceptions_are_all_masked() -> None:
    formatted = JsonFormatter().format(
        record("user %s paid with %s", "amy@example.com", "4111111111111111", exc=True, phone="415-555-2671")
    )
    line = json.loads(formatted)
    assert line["msg"] == "user [EMAIL] paid with [CARD]"
    assert line["phone"] == "[PHONE]"
    assert "bob@example.com" not in line["exc"]
    assert "[EMAIL]" in line["exc"]
