"""skiffd: configuration, logging, the composition root (compose.py) and serving (server.py)."""
