"""The domain API: containers, images, networks, volumes, exec, events.

Services speak in typed Python objects; Docker's CamelCase JSON lives only in skiff.api.
"""
