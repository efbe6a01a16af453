"""Runs the benchmarks and writes one markdown table each to bench/results/.

python -m bench                 # all of them
python -m bench operator_scale  # one
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BENCHMARKS = (
    "operator_scale",
    "operator_failover",
    "service_load",
    "run_engine",
    "slo_fleet",
    "freeze_reaction",
    "secret_rotation",
    "input_limits",
    "outage_freeze",
    "spend_overshoot",
    "llm_failover",
    "tool_wrapper",
    "retention",
    "platform_api",
    "semantic_search",
    "canary",
)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = (
        int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
        // 1024
        // 1024
    )
    kernel = subprocess.run(["uname", "-r"], capture_output=True, text=True).stdout.strip()
    cores = len(os.sched_getaffinity(0))
    return f"{cpu}, {cores} cores, {memory} GiB, Linux {kernel}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHMARKS)} (default: all)"
    )
    names = parser.parse_args().names or list(BENCHMARKS)
    if unknown := set(names) - set(BENCHMARKS):
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    RESULTS.mkdir(exist_ok=True)
    header = f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}.\n"
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        try:
            table = importlib.import_module(f"bench.{name}").run()
        except Exception as error:  # report and go on: one broken benchmark should not hide the others
            failed.append(name)
            print(f"{name} failed: {error!r}", file=sys.stderr)
            continue
        (RESULTS / f"{name}.md").write_text(f"{header}\n{table}\n")
        print(table, flush=True)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
