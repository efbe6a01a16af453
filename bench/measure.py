"""Measuring helpers shared by the benchmarks: peak RSS, percentiles, a local control plane."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

from shepherd import crd

from tests.harness import components
from tests.harness.cluster import Cluster


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


@contextlib.contextmanager
def local_cluster(prefix: str) -> Iterator[tuple[Cluster, Path]]:
    """A local control plane with Shepherd's CRD, in a temporary directory, stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        cluster = components.start_cluster(workdir)
        try:
            cluster.kubectl("apply", "--server-side", "-f", str(crd.CRD_PATH))
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}")
            yield cluster, workdir
        finally:
            if cluster.local:
                cluster.local.stop()
