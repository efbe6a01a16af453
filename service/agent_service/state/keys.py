"""Redis key layout of the checkpointer.

Everything of one (thread, namespace) lives in a handful of keys, so a thread is read,
copied or deleted by naming its keys, never by scanning the keyspace:

    <p>:threads                          set   every thread id (for list(None) only)
    <p>:ns:<thread>                      set   checkpoint namespaces of the thread
    <p>:cp:<thread>:<ns>                 hash  checkpoint id -> packed checkpoint record
    <p>:order:<thread>:<ns>              zset  checkpoint ids, all score 0: lexical order = time order
    <p>:blobs:<thread>:<ns>              hash  "<channel>\\0<version>" -> packed channel value
    <p>:writes:<thread>:<ns>:<cp id>     hash  "<task id>\\0<idx>" -> packed pending write
    <p>:run:<run id>                     set   packed (thread, ns, cp id) written by that run
"""

from __future__ import annotations

from dataclasses import dataclass


def _escape(part: str) -> str:
    # Thread ids and namespaces are user input and may contain ":"; escaping keeps keys unambiguous.
    return part.replace("\\", "\\\\").replace(":", "\\:")


@dataclass(frozen=True)
class KeyLayout:
    prefix: str = "lgcp"

    def _key(self, *parts: str) -> str:
        return ":".join([self.prefix, *(_escape(p) for p in parts)])

    @property
    def threads(self) -> str:
        return f"{self.prefix}:threads"

    def namespaces(self, thread_id: str) -> str:
        return self._key("ns", thread_id)

    def checkpoints(self, thread_id: str, ns: str) -> str:
        return self._key("cp", thread_id, ns)

    def order(self, thread_id: str, ns: str) -> str:
        return self._key("order", thread_id, ns)

    def blobs(self, thread_id: str, ns: str) -> str:
        return self._key("blobs", thread_id, ns)

    def writes(self, thread_id: str, ns: str, checkpoint_id: str) -> str:
        return self._key("writes", thread_id, ns, checkpoint_id)

    def run(self, run_id: str) -> str:
        return self._key("run", run_id)


def blob_field(channel: str, version: object) -> str:
    return f"{channel}\0{version}"


def write_field(task_id: str, idx: int) -> str:
    return f"{task_id}\0{idx}"
