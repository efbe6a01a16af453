"""Regenerate the committed Prometheus rule files in alerts/ (part of `make generate`).

    python hack/generate_rules.py            # write alerts/*.yaml
    python hack/generate_rules.py --check    # exit 1 when they are stale

Any other `python -m shepherd.slo` option is passed through (see operator/shepherd/slo/__main__.py).
`hack/generate.py` can call ``main()`` directly.
"""

from __future__ import annotations

import sys
from pathlib import Path

from shepherd.slo.__main__ import main as slo_main

ALERTS = Path(__file__).resolve().parents[1] / "alerts"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--out-dir" not in args:
        args = ["--out-dir", str(ALERTS), *args]
    return slo_main(args)


if __name__ == "__main__":
    sys.exit(main())
