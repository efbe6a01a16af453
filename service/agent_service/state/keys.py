"""Every Redis key the service and the checkpointer write, in one place.

Keys are hash-tagged so that the same layout works on one Redis and on a Redis Cluster:

* **thread data** (checkpoints, run records, event logs, latest values) carries the thread's own
  tag, ``<p>:{t:<thread>}:...``: a thread's data lives on one shard and is read, copied or deleted by
  naming its keys, never by scanning; different threads spread over the cluster.
* **control data** (the run queue, thread records and their search indexes, crons, limits) carries
  the deployment's tag, ``<p>:{<p>}:...``: it is small, and the scripts that keep it consistent
  (one run per thread, leases, search indexes) need every key they touch on one shard.
* **store data** (the long-term memory of ``agent_service.state.store``) carries its tenant's tag,
  ``<p>:{s:<tenant>}:...``: a tenant's items and their indexes change together in one script, and
  tenants spread over the cluster.

A value never needs keys of both kinds in one atomic step; where a change touches both (a run's
record and its queue entry), the order of the writes and the reader's checks make the gap harmless
(see ``agent_service.runs.queue``).

User-given parts (thread ids, namespaces) are escaped, so ``:`` and braces in them can neither make
two keys collide nor move a key to another hash slot.
"""

from __future__ import annotations

from dataclasses import dataclass


def escape(part: str) -> str:
    """Injective and brace-free: ``\\`` -> ``\\\\``, ``:`` -> ``\\:``, ``{`` -> ``\\(``, ``}`` -> ``\\)``."""
    return part.replace("\\", "\\\\").replace(":", "\\:").replace("{", "\\(").replace("}", "\\)")


def check_prefix(prefix: str) -> str:
    if not prefix or "{" in prefix or "}" in prefix:
        raise ValueError(f"a key prefix must be non-empty and free of braces, got {prefix!r}")
    return prefix


def hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes (the whole key when it has no tag)."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1 : end] if start >= 0 and end > start + 1 else key


@dataclass(frozen=True)
class KeyLayout:
    """Keys of the checkpointer (``RedisSaver``), under its own prefix.

    <p>:{t:<thread>}:ns                  set   checkpoint namespaces of the thread
    <p>:{t:<thread>}:cp:<ns>             hash  checkpoint id -> packed checkpoint record
    <p>:{t:<thread>}:order:<ns>          zset  checkpoint ids, all score 0: lexical order = time order
    <p>:{t:<thread>}:blobs:<ns>          hash  "<channel>\\0<version>" -> packed channel value
    <p>:{t:<thread>}:writes:<ns>:<cp>    hash  "<task id>\\0<idx>" -> packed pending write
    <p>:{<p>}:threads                    set   every thread id (for list(None) only)
    <p>:{<p>}:run:<run id>               set   packed (thread, ns, cp id) written by that run
    """

    prefix: str = "lgcp"

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def _thread(self, thread_id: str, *parts: str) -> str:
        return ":".join([self.prefix, "{t:" + escape(thread_id) + "}", *(escape(p) for p in parts)])

    def _global(self, *parts: str) -> str:
        return ":".join([self.prefix, "{" + self.prefix + "}", *(escape(p) for p in parts)])

    @property
    def threads(self) -> str:
        return self._global("threads")

    def namespaces(self, thread_id: str) -> str:
        return self._thread(thread_id, "ns")

    def checkpoints(self, thread_id: str, ns: str) -> str:
        return self._thread(thread_id, "cp", ns)

    def order(self, thread_id: str, ns: str) -> str:
        return self._thread(thread_id, "order", ns)

    def blobs(self, thread_id: str, ns: str) -> str:
        return self._thread(thread_id, "blobs", ns)

    def writes(self, thread_id: str, ns: str, checkpoint_id: str) -> str:
        return self._thread(thread_id, "writes", ns, checkpoint_id)

    def run(self, run_id: str) -> str:
        return self._global("run", run_id)


def blob_field(channel: str, version: object) -> str:
    return f"{channel}\0{version}"


def write_field(task_id: str, idx: int) -> str:
    return f"{task_id}\0{idx}"


@dataclass(frozen=True)
class ServiceKeys:
    """Keys of the service itself (threads, runs, queue, crons), under ``REDIS_KEY_PREFIX``.

    Thread data, tag ``{t:<thread>}``:
        thread_values    string  JSON of the thread's latest state values
        run_record       string  JSON run record (its final state once it has ended)
        thread_runs      zset    run ids of the thread by creation time (ms)
        run_result       string  JSON output of a run whose thread does not outlive it
        events           stream  the run's event log (see ``agent_service.runs.events``)
    Control data, tag ``{<p>}``: the thread records and indexes (``agent_service.state.threads``),
    the run queue (``agent_service.runs.queue``), crons (``agent_service.runs.crons``).
    """

    prefix: str = "shepherd"

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def _thread(self, thread_id: str, *parts: str) -> str:
        return ":".join([self.prefix, "{t:" + escape(thread_id) + "}", *parts])

    def control(self, *parts: str) -> str:
        """A control key; its parts are escaped (thread ids appear in some)."""
        return ":".join([self.prefix, "{" + self.prefix + "}", *(escape(p) for p in parts)])

    def thread_values(self, thread_id: str) -> str:
        return self._thread(thread_id, "values")

    def run_record(self, thread_id: str, run_id: str) -> str:
        return self._thread(thread_id, "run", run_id)

    def thread_runs(self, thread_id: str) -> str:
        return self._thread(thread_id, "runs")

    def run_result(self, thread_id: str, run_id: str) -> str:
        return self._thread(thread_id, "result", run_id)

    def events(self, thread_id: str, run_id: str) -> str:
        return self._thread(thread_id, "events", run_id)

    @property
    def checkpoint_prefix(self) -> str:
        return f"{self.prefix}:cp"


@dataclass(frozen=True)
class StoreKeys:
    """Keys of one tenant's store (``agent_service.state.store``), tag ``{s:<tenant>}``.

    item:<member>   hash    v: JSON value, c/u: created/updated (ISO), t: TTL (ms),
                            e:<path>: float32 vector of that indexed path
    index           zset    every member "<namespace>\\0<key>", all score 0: lexical order
    ns              zset    every namespace "<a.b.c>", all score 0
    ns-count        hash    namespace -> its items (a namespace goes when its last item does)
    expiry          zset    member -> when it expires (ms), for items with a TTL
    vectors-log     stream  members whose vectors changed (replicas keep their vector mirror fresh)

    A namespace is its labels joined by ".", which labels may not contain; a member is the
    namespace, NUL, then the key.
    """

    prefix: str
    tenant: str

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def _key(self, *parts: str) -> str:
        return ":".join([self.prefix, "{s:" + escape(self.tenant) + "}", *(escape(p) for p in parts)])

    def item(self, member: str) -> str:
        return self._key("item", member)

    @property
    def index(self) -> str:
        return self._key("index")

    @property
    def namespaces(self) -> str:
        return self._key("ns")

    @property
    def namespace_counts(self) -> str:
        return self._key("ns-count")

    @property
    def expiry(self) -> str:
        return self._key("expiry")

    @property
    def vectors_log(self) -> str:
        return self._key("vectors-log")
