"""Fakes and fixtures that ship with the package, for skiff's tests and for its users'."""
