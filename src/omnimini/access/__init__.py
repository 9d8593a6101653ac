"""Access (layer 2): API keys -> principals, RPM/TPM rate limits, the per-request context."""
