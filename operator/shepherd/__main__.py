"""``shepherd-operator``: run the Shepherd operator (kopf, standalone: one replica, no peering).

One replica is the supported topology (run it with ``strategy: Recreate`` so two operators never
write at once); kopf peering for an HA pair is not enabled.
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
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8081/healthz",
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
    kopf.run(
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
