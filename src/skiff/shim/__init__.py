"""The per-container supervisor (shim), the process that forks shims, their client,
and the json-file log they write and the container service reads."""
