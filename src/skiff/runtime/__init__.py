"""skiff-runtime: an OCI runtime with runc's command line.

It imports only `skiff.oci`, `skiff.linux`, `skiff.cgroups` and `skiff.errors`.
"""
