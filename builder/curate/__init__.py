"""The curate stage: automatic filters plus a recorded accept/reject decision list."""
