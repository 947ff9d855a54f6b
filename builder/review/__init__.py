"""The review page: its state (clips, decisions, masks), the loopback HTTP server and the static page."""
