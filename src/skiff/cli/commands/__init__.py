"""One module per command; each parses its flags and calls the client."""
