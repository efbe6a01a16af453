"""``shepherd-operator``: run the Shepherd operator (kopf, standalone: no kopf peering).

Alone, or with ``--leader-elect`` as one of several replicas of which the holder of a Lease works
and the others wait to take over (``shepherd.leader``, ``shepherd.elected``; the chart's way).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="shepherd-operator", description=__doc__.splitlines()[0])
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch only this namespace (repeatable; glob patterns allowed)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    parser.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="serve the liveness probe, e.g. http://0.0.0.0:8081/healthz (with --leader-elect, "
        "also /readyz: 200 while leading)",
    )
    parser.add_argument(
        "--leader-elect",
        action="store_true",
        help="work only while holding the Lease $SHEPHERD_LEADER_LEASE (shepherd-operator) in "
        "$SHEPHERD_NAMESPACE; wait to take it over otherwise",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("SHEPHERD_METRICS_PORT", "8080")),
        help="serve /metrics on this port, 0 to disable (default: $SHEPHERD_METRICS_PORT or 8080)",
    )
    parser.add_argument(
        "--metrics-address",
        default=os.environ.get("SHEPHERD_METRICS_ADDRESS", "0.0.0.0"),
        help="address for /metrics (default: $SHEPHERD_METRICS_ADDRESS or 0.0.0.0)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="verbose logging")
    parser.add_argument("--debug", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from shepherd import api

    try:
        api.platform_defaults()  # a bad chart `defaults.*` value stops the start, naming the variable
    except ValueError as exc:
        print(f"shepherd-operator: {exc}", file=sys.stderr)
        return 2
    from shepherd import monitoring_labels

    try:  # read once, here: a bad chart `*.labels` value stops the start, naming the variable
        labels = monitoring_labels.from_environment()
    except monitoring_labels.LabelsError as exc:
        print(f"shepherd-operator: {exc}", file=sys.stderr)
        return 2
    import kopf  # imported late so --help is instant

    import shepherd.handlers  # (registers the handlers)

    shepherd.handlers.NAMESPACES[:] = args.namespace  # the budget watcher serves the same scope
    shepherd.handlers.MONITORING_LABELS = labels

    from shepherd import metrics

    kopf.configure(verbose=args.verbose, debug=args.debug)
    metrics.serve(args.metrics_port, args.metrics_address)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not (args.verbose or args.debug):
        # "Handler ... succeeded" for every watch event: at fleet scale, most of the log and of its CPU.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    scope = {"standalone": True, "clusterwide": not args.namespace, "namespaces": args.namespace}
    if args.leader_elect:
        import asyncio

        from shepherd import elected, leader

        try:
            lease = leader.LeaseSettings.from_environment()
        except ValueError as exc:
            print(f"shepherd-operator: {exc}", file=sys.stderr)
            return 2
        return asyncio.run(elected.run(lease, lambda: kopf.operator(**scope), args.liveness))
    kopf.run(**scope, liveness_endpoint=args.liveness)
    return 0


if __name__ == "__main__":
    sys.exit(main())
