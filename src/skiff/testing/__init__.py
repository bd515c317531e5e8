"""Fakes that ship with skiff, so service tests run in milliseconds (as trio.testing)."""
