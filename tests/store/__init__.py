"""Storage-level checks against the real database."""
