"""Fakes that ship with the package, so tests (ours and others') run without root."""
