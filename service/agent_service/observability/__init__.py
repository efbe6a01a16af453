"""Metrics, traces and logs of the agent service."""
