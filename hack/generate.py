"""`make generate`: regenerate every committed artefact, in dependency order (or check them all).

    python hack/generate.py          # write
    python hack/generate.py --check  # exit 1 when any committed copy is stale

The CRD lists the service's histogram buckets, so their operator copy (``shepherd.slo.buckets``)
comes first. The chart copies what the other generators write, so it runs after them; the reference
page reads the CRD, so it runs after the CRD. ``dashboards.build`` also writes the operator's package copy of
the per-deployment board (``operator/shepherd/data/agentdeployment-dashboard.json``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENERATORS = (
    ["-m", "shepherd.slo.buckets"],
    ["-m", "shepherd.crd"],
    ["-m", "shepherd.slo", "--out-dir", "alerts"],
    ["-m", "dashboards.build"],
    ["charts/shepherd/hack/generate.py"],
    ["docs/reference.py"],
)


def main() -> int:
    extra = sys.argv[1:]
    failed = 0
    for generator in GENERATORS:
        result = subprocess.run([sys.executable, *generator, *extra], cwd=REPO)
        failed |= result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
