"""Containers below the service: the OCI spec of a container, its managed files,
names, the record store, restart policies."""
