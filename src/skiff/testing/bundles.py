"""Busybox root filesystems and OCI bundles for tests and demos.

The rootfs is made from the host's busybox-static: the binary is copied in and
every applet it lists gets a symlink, so a test needs no image or network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess


def find_busybox() -> str:
    for path in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(path):
            return path
    found = shutil.which("busybox")
    if not found:
        raise FileNotFoundError("busybox not found: install busybox-static")
    return found


def make_busybox_rootfs(dest: str) -> str:
    busybox = find_busybox()
    os.makedirs(dest, exist_ok=True)
    os.chmod(dest, 0o755)  # a container root must be searchable by any uid
    for d in ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "usr/bin", "var"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(busybox, os.path.join(dest, "bin/busybox"))
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        link = os.path.join(dest, "bin", applet)
        if applet != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(dest, "etc/passwd"), "w") as f:
        f.write(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        )
    with open(os.path.join(dest, "etc/group"), "w") as f:
        f.write("root:x:0:\nnobody:x:65534:\n")
    return dest


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
