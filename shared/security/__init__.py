"""Security: credential vault, client API keys, rate limits, audit log, redaction."""
