"""Authentication, tenants, rate limits, request limits and security headers."""
