"""The LangGraph API's thread ``ttl`` as the SDK sends it, and the expiry it stamps on a record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from agent_service.api.schemas import ThreadCreate, ThreadPatch
from agent_service.app import default_thread_ttl
from agent_service.settings import Settings
from agent_service.state.threads import expires_ms, stamp_ttl, ttl_policy
from pydantic import ValidationError


def test_the_sdk_wire_shape_is_a_policy():
    # threads.create(ttl=30) sends {"ttl": {"ttl": 30, "strategy": "delete"}}.
    assert ThreadCreate.model_validate({"ttl": {"ttl": 30, "strategy": "delete"}}).ttl.policy() == {
        "strategy": "delete",
        "ttl_minutes": 30,
    }
    assert ThreadPatch.model_validate({"ttl": {"ttl": 0.5}}).ttl.policy()["strategy"] == "delete"


@pytest.mark.parametrize(
    ("ttl", "field"),
    [({"ttl": 0}, "ttl"), ({"ttl": 10**9}, "ttl"), ({"ttl": 5, "strategy": "archive"}, "strategy")],
)
def test_bad_ttls_name_their_field(ttl, field):
    with pytest.raises(ValidationError) as refused:
        ThreadCreate.model_validate({"ttl": ttl})
    assert refused.value.errors()[0]["loc"] == ("ttl", field)


def test_the_expiry_counts_from_now():
    stamped = stamp_ttl(ttl_policy(90, "keep_latest"))
    expected = datetime.now(UTC) + timedelta(minutes=90)
    assert abs(expires_ms({"ttl": stamped}) - expected.timestamp() * 1000) < 5_000
    assert stamped["strategy"] == "keep_latest"
    assert expires_ms({}) is None


def test_the_deployment_default():
    assert default_thread_ttl(Settings()) is None
    policy = default_thread_ttl(Settings(thread_ttl_seconds=3600, thread_ttl_strategy="keep_latest"))
    assert policy == {"strategy": "keep_latest", "ttl_minutes": 60}
