"""Dockerfile parsing, the build context and the classic builder."""
