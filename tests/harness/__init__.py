"""Real components for Shepherd's tests and `make dev`, started on loopback as child processes."""
