"""The Redis requests a run makes for itself (MONITOR): its start and its end are one request each.

A request here is what one connection sends at once as far as MONITOR shows it: a lone command or a
MULTI/EXEC block (the commands a script runs are not counted). Only requests naming the run count,
so the replica's idle loops and the tenant's usage counter do not.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import redis

QUICK = {"AGENT_GRAPH": "slow_graph:graph", "SLOW_NODE_SECONDS": "0"}
QUESTION = {"messages": [{"role": "user", "content": "hello"}]}


@contextmanager
def _monitored(redis_url: str) -> Iterator[list[dict]]:
    """The commands Redis runs inside the block, as redis-py's MONITOR parses them."""
    seen: list[dict] = []
    listening = threading.Event()
    stop = f"monitor-stop-{uuid.uuid4().hex}"

    def listen() -> None:
        with redis.Redis.from_url(redis_url).monitor() as monitor:
            listening.set()
            while stop not in (command := monitor.next_command())["command"]:
                seen.append(command)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert listening.wait(10)
    try:
        yield seen
    finally:
        redis.Redis.from_url(redis_url).echo(stop)
        listener.join(10)


def _requests_naming(seen: list[dict], run_id: str) -> list[list[str]]:
    """The run's requests, in order; each is the list of its commands' names."""
    requests: list[list[dict]] = []
    open_blocks: dict[tuple[str, int], list[dict]] = {}
    for command in seen:
        if command["client_type"] == "lua":
            continue
        client = (command["client_address"], command["client_port"])
        name = command["command"].split(" ", 1)[0].upper()
        if name == "MULTI":
            open_blocks[client] = []
        elif name == "EXEC":
            requests.append(open_blocks.pop(client))
        elif client in open_blocks:
            open_blocks[client].append(command)
        else:
            requests.append([command])
    return [
        [c["command"].split(" ", 1)[0].upper() for c in request]
        for request in requests
        if any(run_id in c["command"] for c in request)
    ]


def _is_event_batch(request: list[str]) -> bool:
    return request == ["XADD"]


def test_a_stateless_run_starts_and_ends_in_one_request_each(redis_url, start_service):
    service = start_service(redis_url, **QUICK)
    body = {"assistant_id": "agent", "input": QUESTION}
    httpx.post(f"{service.url}/runs/wait", json=body, timeout=30).raise_for_status()  # scripts loaded

    with _monitored(redis_url) as seen:
        response = httpx.post(f"{service.url}/runs/wait", json=body, timeout=30).raise_for_status()
    run_id = response.headers["Content-Location"].rsplit("/", 1)[1]
    requests = _requests_naming(seen, run_id)

    start, *events, end = requests
    assert start == ["SET", "EVALSHA"]  # the record, then the queue's submit
    assert events  # the log as it grows: batches of events only
    assert all(_is_event_batch(r) for r in events)
    assert end[0] == "SET"  # the record, its output, the rest of the log, its end, then the finish
    assert end[-3:] == ["XADD", "EXPIRE", "EVALSHA"]
    assert response.json()["messages"][-1]["content"] == "done"


def test_a_thread_run_writes_its_record_log_end_and_finish_in_one_request(redis_url, start_service):
    service = start_service(redis_url, **QUICK)
    thread_id = httpx.post(f"{service.url}/threads", json={}).raise_for_status().json()["thread_id"]
    body = {"assistant_id": "agent", "input": QUESTION}
    runs = f"{service.url}/threads/{thread_id}/runs"
    httpx.post(f"{runs}/wait", json=body, timeout=30).raise_for_status()  # scripts loaded

    with _monitored(redis_url) as seen:
        response = httpx.post(f"{runs}/wait", json=body, timeout=30).raise_for_status()
    run_id = response.headers["Content-Location"].rsplit("/", 1)[1]
    requests = [r for r in _requests_naming(seen, run_id) if not _is_event_batch(r)]

    assert requests[0] == ["SET", "ZADD", "EVALSHA"]  # the record, listed on its thread, then submit
    assert requests[-1][0] == "SET"  # the record, the rest of the log, its end, then the finish
    assert requests[-1][-3:] == ["XADD", "EXPIRE", "EVALSHA"]
    assert httpx.get(f"{runs}/{run_id}").json()["status"] == "success"
