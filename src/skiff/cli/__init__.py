"""`skiff`: docker-compatible commands, each a thin module over skiff.client.

main.py parses the global flags and imports only the module of the command invoked, so
`skiff version` loads neither aiohttp nor rich.
"""
