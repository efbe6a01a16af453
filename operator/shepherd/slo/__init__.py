"""SLO rules and objectives: windows.py (burn-rate windows as data), rules.py (fleet-wide
Prometheus rules), objectives.py (the shepherd_slo_* series the rules join on), generate.py (the
committed rule files; ``python -m shepherd.slo``)."""
