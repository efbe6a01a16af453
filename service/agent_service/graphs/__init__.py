"""Graphs served by the runtime: the loader for AGENT_GRAPH and the reference agent."""
