"""Measuring helpers shared by the benchmarks: apiserver request counts, peak RSS, percentiles."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


class AuditCounter:
    """Counts the requests one user sent to the apiserver, from its JSON audit log."""

    def __init__(self, audit_log: Path, username: str):
        self.audit_log = audit_log
        self.username = username
        self._offset = 0

    def mark(self) -> None:
        self._offset = self.audit_log.stat().st_size

    def since_mark(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        with self.audit_log.open("rb") as log:
            log.seek(self._offset)
            for line in log:
                event = json.loads(line)
                if event.get("user", {}).get("username") == self.username:
                    counts[event["verb"]] += 1
        return counts

    @staticmethod
    def writes(counts: Counter[str]) -> int:
        return sum(n for verb, n in counts.items() if verb in WRITE_VERBS)


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's peak resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def percentile(samples: list[float], q: float) -> float:
    return (
        statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]
        if len(samples) > 1
        else samples[0]
    )
