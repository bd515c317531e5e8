"""Test helpers that ship with the package (as trio.testing does)."""
