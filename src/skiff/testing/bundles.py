"""Busybox root filesystems and OCI bundles for tests and demos.

The rootfs is made from the host's busybox-static: the binary is copied in and
every applet it lists gets a symlink, so a test needs no image or network.
"""

from __future__ import annotations

import json
import os


def make_busybox_rootfs(dest: str) -> str:
    from skiff.images.busybox import make_rootfs

    return make_rootfs(dest)


def make_bundle(
    bundle: str, rootfs: str, args: list[str], cgroups_path: str = "", **changes: object
) -> str:
    """Write bundle/config.json for `args` over `rootfs` (a path, linked in as bundle/rootfs)."""
    from skiff.runtime.cli.spec import default_spec

    os.makedirs(bundle, exist_ok=True)
    link = os.path.join(bundle, "rootfs")
    if not os.path.lexists(link):
        os.symlink(os.path.abspath(rootfs), link)
    spec = default_spec()
    process = spec["process"]
    assert isinstance(process, dict)
    process["args"] = args
    process["terminal"] = False
    root = spec["root"]
    assert isinstance(root, dict)
    root["readonly"] = False
    linux = spec["linux"]
    assert isinstance(linux, dict)
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    for key, value in changes.items():
        spec[key] = value
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f, indent=1)
    return bundle


def find_busybox() -> str:
    from skiff.images.busybox import find_busybox as find

    return find()
