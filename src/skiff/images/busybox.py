"""A busybox root filesystem from the host's busybox-static: the image with no registry.

`make_rootfs(dest)` copies the binary in and links every applet it lists (the layout
of the official image: /bin/<applet> -> busybox), with a minimal /etc/passwd and
/etc/group. Every entry gets the binary's mtime, so the same host binary always makes
the same layer and thus the same image id.
"""

from __future__ import annotations

import os
import shutil
import subprocess

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"
DIRS = ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "usr/bin", "var")


def find_busybox() -> str:
    for path in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(path):
            return path
    found = shutil.which("busybox")
    if not found:
        raise FileNotFoundError("busybox not found: install busybox-static")
    return found


def make_rootfs(dest: str, busybox: str | None = None) -> str:
    busybox = busybox or find_busybox()
    os.makedirs(dest, exist_ok=True)
    os.chmod(dest, 0o755)  # a container root must be searchable by any uid
    for d in DIRS:
        os.makedirs(os.path.join(dest, d), exist_ok=True)
        os.chmod(os.path.join(dest, d), 0o755)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    os.chmod(os.path.join(dest, "root"), 0o700)
    shutil.copy2(busybox, os.path.join(dest, "bin/busybox"))
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        link = os.path.join(dest, "bin", applet)
        if applet != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
        with open(os.path.join(dest, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(dest, name), 0o644)
    return dest


def busybox_mtime(busybox: str | None = None) -> int:
    return int(os.stat(busybox or find_busybox()).st_mtime)


def set_times(root: str, mtime: int) -> None:
    """Give every entry under `root` the same mtime (links not followed)."""
    for folder, dirs, files in os.walk(root, topdown=False):
        for name in files + dirs:
            os.utime(os.path.join(folder, name), (mtime, mtime), follow_symlinks=False)
    os.utime(root, (mtime, mtime))


def busybox_version(busybox: str | None = None) -> str:
    out = subprocess.run(
        [busybox or find_busybox()], capture_output=True, text=True, check=False
    ).stdout
    first = out.splitlines()[0] if out else ""
    # "BusyBox v1.35.0 (Debian 1:1.35.0-4+b3) multi-call binary."
    parts = first.split()
    return parts[1].lstrip("v") if len(parts) > 1 and parts[0] == "BusyBox" else ""
