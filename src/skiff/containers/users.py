"""Who a container's process runs as: `-u` and `--group-add` resolved in the container's
own /etc/passwd and /etc/group, as runc's libcontainer/user does for dockerd.

    ""             root (uid 0, gid 0), or the passwd entry of uid 0
    "alice"        alice's uid and gid, plus every group that lists alice as a member
    "1000"         uid 1000 (its passwd entry's gid if there is one, else 0)
    "alice:wheel"  alice's uid, wheel's gid, and no member groups (explicit group)

The process's additional gids are its gid, then the member groups, then --group-add
(names or numbers). A missing /etc/passwd or /etc/group is fine for numbers and fatal
for names ("unable to find user bob: no matching entries in passwd file").
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from skiff.errors import InvalidArgument
from skiff.runtime.rootfs import secure_join

MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class ExecUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str = "/"


@dataclass(frozen=True)
class _Passwd:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class _Group:
    name: str
    gid: int
    members: tuple[str, ...]


def _atoi(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _lines(rootfs: str, path: str) -> list[list[str]] | None:
    try:
        with open(secure_join(rootfs, path), errors="replace") as f:
            text = f.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    return [line.strip().split(":") for line in text.splitlines() if line.strip()]


def _pad(fields: list[str], n: int) -> list[str]:
    return fields + [""] * (n - len(fields))


def read_passwd(rootfs: str) -> list[_Passwd] | None:
    lines = _lines(rootfs, "/etc/passwd")
    if lines is None:
        return None
    out = []
    for fields in lines:
        f = _pad(fields, 7)
        out.append(_Passwd(f[0], _atoi(f[2]), _atoi(f[3]), f[5]))
    return out


def read_group(rootfs: str) -> list[_Group] | None:
    lines = _lines(rootfs, "/etc/group")
    if lines is None:
        return None
    out = []
    for fields in lines:
        f = _pad(fields, 4)
        members = tuple(m for m in f[3].split(",") if m)
        out.append(_Group(f[0], _atoi(f[2]), members))
    return out


def _numeric(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _check_range(value: int) -> int:
    if not 0 <= value <= MAX_ID:
        raise InvalidArgument(f"uids and gids must be in range 0-{MAX_ID}")
    return value


def resolve_user(rootfs: str, spec: str, group_add: Sequence[str] = ()) -> ExecUser:
    """The identity `spec` ("user[:group]") names inside `rootfs`."""
    user_arg, _, group_arg = spec.partition(":")
    passwd = read_passwd(rootfs)
    groups = read_group(rootfs)
    uid_num = _numeric(user_arg)
    gid_num = _numeric(group_arg)

    uid, gid, home = 0, 0, "/"
    if user_arg == "":
        match = [p for p in passwd or [] if p.uid == 0]
    elif uid_num is not None:
        match = [p for p in passwd or [] if p.uid == uid_num]
    else:
        match = [p for p in passwd or [] if p.name == user_arg]
    matched_name = ""
    if match:
        matched_name, uid, gid, home = match[0].name, match[0].uid, match[0].gid, match[0].home
    elif user_arg:
        if uid_num is None:
            raise InvalidArgument(
                f"unable to find user {user_arg}: no matching entries in passwd file"
            )
        uid = _check_range(uid_num)

    member_of: list[int] = []
    if group_arg:
        if gid_num is not None:
            found = [g for g in groups or [] if g.gid == gid_num]
        else:
            found = [g for g in groups or [] if g.name == group_arg]
        if found:
            gid = found[0].gid
        elif gid_num is None:
            raise InvalidArgument(
                f"unable to find group {group_arg}: no matching entries in group file"
            )
        else:
            gid = _check_range(gid_num)
    elif matched_name:
        member_of = [g.gid for g in groups or [] if matched_name in g.members]

    extra = additional_groups(groups, group_add)
    return ExecUser(uid, gid, (gid, *member_of, *extra), home or "/")


def additional_groups(groups: list[_Group] | None, names: Sequence[str]) -> list[int]:
    """--group-add values: group names or numbers, each once."""
    out: list[int] = []
    for name in names:
        found = [g.gid for g in groups or [] if g.name == name or str(g.gid) == name]
        if found:
            gid = found[0]
        else:
            number = _numeric(name)
            if number is None:
                raise InvalidArgument(
                    f"Unable to find group {name}: no matching entries in group file"
                )
            gid = _check_range(number)
        if gid not in out:
            out.append(gid)
    return out


def make_workdir(rootfs: str, path: str) -> None:
    """Create the working directory inside `rootfs` if it is missing (root-owned, 0755,
    as dockerd does before start); a symlink in the path stays inside the rootfs."""
    target = secure_join(rootfs, path)
    if not os.path.isdir(target):
        os.makedirs(target, mode=0o755, exist_ok=True)
