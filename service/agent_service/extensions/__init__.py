"""What a team's LangGraph project adds to the service: its HTTP app (http.app), its auth (auth.path)."""
