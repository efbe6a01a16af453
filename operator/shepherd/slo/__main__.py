"""``python -m shepherd.slo``: write (or check) the generated rule files.

    python -m shepherd.slo                       # writes alerts/*.yaml for the default windows
    python -m shepherd.slo --check               # exit 1 when the committed files are stale
    python -m shepherd.slo --slo-window 10m --scrape-interval 1s --evaluation-interval 1s \\
        --out-dir /tmp/rules                     # a test Prometheus with a short SLO window
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .generate import generated_files
from .rules import DEFAULT_RUNBOOK_BASE_URL, DEFAULT_SLO_WINDOWS, RuleConfig
from .windows import parse_duration


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shepherd.slo", description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("alerts"))
    parser.add_argument(
        "--slo-window", action="append", dest="slo_windows", help="repeatable; default: 30d and 7d"
    )
    parser.add_argument("--scrape-interval", default="15s")
    parser.add_argument("--evaluation-interval", default=None)
    parser.add_argument("--runbook-base-url", default=DEFAULT_RUNBOOK_BASE_URL)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    config = RuleConfig(
        runbook_base_url=args.runbook_base_url,
        scrape_interval=parse_duration(args.scrape_interval),
        evaluation_interval=parse_duration(args.evaluation_interval) if args.evaluation_interval else None,
    )
    files = generated_files(args.slo_windows or DEFAULT_SLO_WINDOWS, config)
    stale = []
    for name, content in files.items():
        path = args.out_dir / name
        if args.check:
            if not path.exists() or path.read_text() != content:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path}")
    if stale:
        print("stale generated files (run make generate): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
