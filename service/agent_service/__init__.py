"""Shepherd agent service: a production runtime for LangGraph graphs."""
