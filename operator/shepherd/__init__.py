"""Shepherd: a Kubernetes operator for LLM agent services with SLOs."""
