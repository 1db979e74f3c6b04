"""Account information API for fintech apps (CONTRACT §6)."""
