"""Error budgets: read Prometheus for the whole fleet, run the freeze policy, write status.

* ``prometheus`` — a small async HTTP client with typed errors (unreachable, bad query, empty).
* ``snapshot`` — the fixed query set and the parsing of its answers into per-resource snapshots.
* ``policy`` — the error-budget policy state machine and the hold decision (pure).
* ``report`` — the status fields, conditions and Events the budget owns (pure).
* ``watcher`` — one loop for the whole fleet that ties them together.
"""
