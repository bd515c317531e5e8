"""Mount option lists as dockerd writes them into a container's spec (pure).

`merge_tmpfs_options` is moby's MergeTmpfsOptions: the last of each conflicting flag
wins (`noexec` then `exec` -> `exec`), one propagation mode, data options once each,
and anything else is refused with dockerd's message.
"""

from __future__ import annotations

from skiff.errors import InvalidArgument

# Flag options, grouped by the mount flag they set or clear: one per group survives.
_FLAG_GROUPS = {
    "ro": "rdonly",
    "rw": "rdonly",
    "suid": "nosuid",
    "nosuid": "nosuid",
    "dev": "nodev",
    "nodev": "nodev",
    "exec": "noexec",
    "noexec": "noexec",
    "sync": "sync",
    "async": "sync",
    "dirsync": "dirsync",
    "remount": "remount",
    "mand": "mand",
    "nomand": "mand",
    "atime": "noatime",
    "noatime": "noatime",
    "diratime": "nodiratime",
    "nodiratime": "nodiratime",
    "bind": "bind",
    "rbind": "rbind",
    "relatime": "relatime",
    "norelatime": "relatime",
    "strictatime": "strictatime",
    "nostrictatime": "strictatime",
}
PROPAGATIONS = (
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
)
_TMPFS_DATA = frozenset({"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"})

#: What dockerd puts before the user's options of a --tmpfs mount.
TMPFS_DEFAULTS = ("noexec", "nosuid", "nodev", "rprivate")


def _group(option: str) -> str | None:
    if option in PROPAGATIONS:
        return "propagation"
    return _FLAG_GROUPS.get(option)


def merge_tmpfs_options(options: list[str]) -> list[str]:
    """Dedupe `options` keeping the last of each kind, in their original order."""
    seen: set[str] = set()
    out: list[str] = []
    for option in reversed(options):
        if option == "defaults":
            continue
        group = _group(option)
        if group is None:
            key, eq, _ = option.partition("=")
            if not eq or key not in _TMPFS_DATA:
                raise InvalidArgument(f"Invalid tmpfs option {_go_quote_list(option)}")
            group = "data:" + key
        if group not in seen:
            seen.add(group)
            out.append(option)
    out.reverse()
    return out


def tmpfs_mount_options(data: str) -> list[str]:
    """The options of a tmpfs mount whose data (`--tmpfs /run:DATA`) is `data`."""
    options = list(TMPFS_DEFAULTS)
    if data:
        options += data.split(",")
    return merge_tmpfs_options(options)


def _go_quote_list(option: str) -> str:
    # moby formats the split option with %q: ["foo"] or ["a" "b"]
    return "[" + " ".join('"' + p + '"' for p in option.split("=", 1)) + "]"


def tmpfs_data_from_options(size_bytes: int, mode: int, read_only: bool) -> str:
    """--mount type=tmpfs,tmpfs-size=..,tmpfs-mode=.. as mount data (ConvertTmpfsOptions)."""
    raw: list[str] = []
    if read_only:
        raw.append("ro")
    if mode:
        raw.append(f"mode={mode:o}")
    if size_bytes:
        size, suffix = size_bytes, ""
        for letter, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size_bytes % divisor == 0:
                size, suffix = size_bytes // divisor, letter
                break
        raw.append(f"size={size}{suffix}")
    return ",".join(raw)
