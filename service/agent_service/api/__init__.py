"""HTTP API: the LangGraph Server endpoints the official SDK calls, plus health probes."""
