"""``llinet-build doctor``: checks, one line each, that a real fetch has what it needs."""
