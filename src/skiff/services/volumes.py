"""Volumes: the `local` driver, as Docker's.

    <data root>/volumes/<name>/_data          what containers see (the mountpoint)
    <data root>/volumes/<name>/volume.json    {name, driver, created_at, labels, options}

The metadata file is written atomically (temporary name, fsync, rename) *after* `_data`
exists, so a crash leaves either no volume or a whole one; a folder without
`volume.json` is not a volume and is ignored (and swept by `create` of the same name).

Who uses a volume is the container service's knowledge: it hands a callable to
`set_in_use` (volume name -> container ids), and `remove` refuses a volume in use
(409, Docker's "remove NAME: volume is in use - [ID]") unless... never: Docker refuses
even with --force. `prune` skips volumes in use.

The container core turns `-v NAME:/path` and `--mount type=volume,...` into bind mounts
of the volume's `_data` with `resolve_binds` / `VolumeService.ensure` (creating a
missing named volume, or an anonymous one for `-v /path`, as dockerd does);
`copy_up` fills a fresh volume with what the image has at the mount path.

Errors (skiff.errors categories, Docker's wording):

    NotFound         "get NAME: no such volume"                                  404
    InvalidArgument  "create NAME: ... includes invalid characters ..."         400
    Conflict         "remove NAME: volume is in use - [ID]"                      409
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import re
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from skiff.errors import Conflict, InvalidArgument, NotFound

LOCAL = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
META = "volume.json"
DATA = "_data"
VALID_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
LOCAL_OPTIONS = frozenset({"type", "device", "o", "size"})
FILTER_KEYS = ("name", "label", "label!", "dangling", "driver", "all")

#: The container service's answer to "who uses which volume": name -> container ids.
InUse = Callable[[], Mapping[str, Iterable[str]]]
EventHook = Callable[[str, str, dict[str, str]], None]  # (action, name, attributes)


@dataclass(frozen=True)
class Volume:
    name: str
    driver: str
    mountpoint: str
    created_at: str  # RFC 3339, seconds, local zone as dockerd writes it
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    scope: str = "local"
    size: int = -1  # filled by disk_usage()
    ref_count: int = -1  # filled by disk_usage()

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels


@dataclass(frozen=True)
class BindMount:
    """A mount the container core gives the runtime as a bind: `source` on the host."""

    source: str
    destination: str
    readonly: bool = False
    volume: str = ""  # the volume's name when the source is a volume
    created: bool = False  # the volume was made for this container (copy_up applies)
    propagation: str = ""
    options: tuple[str, ...] = ()


class NoSuchVolume(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"get {name}: no such volume")


@dataclass(frozen=True)
class VolumeFilters:
    name: tuple[str, ...] = ()
    label: tuple[str, ...] = ()
    label_not: tuple[str, ...] = ()
    dangling: bool | None = None
    driver: tuple[str, ...] = ()
    all: bool = False  # prune only: named volumes too (API >= 1.42)

    @classmethod
    def from_filters(cls, filters: Mapping[str, builtins.list[str]]) -> VolumeFilters:
        for key in filters:
            if key not in FILTER_KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")

        def boolean(key: str) -> bool | None:
            out: bool | None = None
            for value in filters.get(key, []):
                low = value.lower()
                if low in ("true", "1"):
                    out = True
                elif low in ("false", "0"):
                    out = False
                else:
                    raise InvalidArgument(f"invalid filter '{key}={value}'")
            return out

        return cls(
            name=tuple(filters.get("name", [])),
            label=tuple(filters.get("label", [])),
            label_not=tuple(filters.get("label!", [])),
            dangling=boolean("dangling"),
            driver=tuple(filters.get("driver", [])),
            all=bool(boolean("all")),
        )


class VolumeService:
    """Synchronous and thread-safe (the API calls it from worker threads)."""

    def __init__(self, root: str | os.PathLike[str], *, on_event: EventHook | None = None) -> None:
        self.root = os.path.abspath(os.fspath(root))
        os.makedirs(self.root, mode=0o701, exist_ok=True)
        self._lock = threading.RLock()
        self._in_use: InUse = dict
        self._on_event = on_event

    def set_in_use(self, in_use: InUse) -> None:
        self._in_use = in_use

    def users(self, name: str) -> builtins.list[str]:
        return sorted(self._in_use().get(name, ()))

    # --- create / read ---------------------------------------------------------------

    def create(
        self,
        name: str = "",
        driver: str = "",
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> Volume:
        """`docker volume create`; an existing volume of that name is returned as is."""
        driver = driver or LOCAL
        labels = dict(labels or {})
        if not name:
            name = secrets.token_hex(32)
            labels.setdefault(ANONYMOUS_LABEL, "")
        check_name(name)
        if driver != LOCAL:
            raise NotFound(
                f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found'
            )
        for key in options or {}:
            if key not in LOCAL_OPTIONS:
                raise InvalidArgument(f'create {name}: invalid option key: "{key}"')
        with self._lock:
            with contextlib.suppress(NotFound):
                return self.get(name)
            folder = os.path.join(self.root, name)
            data = os.path.join(folder, DATA)
            os.makedirs(data, mode=0o755, exist_ok=True)
            os.chmod(folder, 0o701)
            doc = {
                "name": name,
                "driver": driver,
                "created_at": _now_rfc3339(),
                "labels": labels,
                "options": dict(options or {}),
            }
            _write_atomic(os.path.join(folder, META), json.dumps(doc).encode())
        self._event("create", name, {"driver": driver})
        return self._load(name)

    def get(self, name: str) -> Volume:
        if not name or "/" in name or name in (".", ".."):
            raise NoSuchVolume(name)
        return self._load(name)

    def _load(self, name: str) -> Volume:
        folder = os.path.join(self.root, name)
        try:
            with open(os.path.join(folder, META), "rb") as f:
                doc = json.loads(f.read())
        except (FileNotFoundError, NotADirectoryError):
            raise NoSuchVolume(name) from None
        return Volume(
            name=str(doc["name"]),
            driver=str(doc.get("driver") or LOCAL),
            mountpoint=os.path.join(folder, DATA),
            created_at=str(doc.get("created_at", "")),
            labels={str(k): str(v) for k, v in (doc.get("labels") or {}).items()},
            options={str(k): str(v) for k, v in (doc.get("options") or {}).items()},
        )

    def list(self, filters: VolumeFilters | None = None) -> builtins.list[Volume]:
        flt = filters or VolumeFilters()
        used = self._in_use()
        out = []
        for entry in sorted(os.listdir(self.root)):
            try:
                volume = self._load(entry)
            except (NotFound, ValueError, KeyError):
                continue
            if _matches(volume, flt, in_use=bool(list(used.get(volume.name, ())))):
                out.append(volume)
        return out

    # --- delete ------------------------------------------------------------------------

    def remove(self, name: str, force: bool = False) -> None:
        """`docker volume rm`: refused while a container uses it (with -f too, as Docker);
        `force` only makes a missing volume not an error."""
        with self._lock:
            try:
                self.get(name)
            except NotFound:
                if force:
                    return
                raise
            users = self.users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            self._delete(name)
        self._event("destroy", name, {})

    def _delete(self, name: str) -> None:
        folder = os.path.join(self.root, name)
        # The metadata goes first: a crash mid-delete leaves a folder that is no volume.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, META))
        shutil.rmtree(folder, ignore_errors=True)

    def prune(self, filters: VolumeFilters | None = None) -> tuple[builtins.list[str], int]:
        """`docker volume prune`: unused anonymous volumes (every unused one with
        the `all` filter). Returns the names deleted and the bytes reclaimed."""
        flt = filters or VolumeFilters()
        deleted: builtins.list[str] = []
        reclaimed = 0
        with self._lock:
            used = self._in_use()
            for volume in self.list(VolumeFilters(label=flt.label, label_not=flt.label_not)):
                if list(used.get(volume.name, ())):
                    continue
                if not flt.all and not volume.anonymous:
                    continue
                reclaimed += dir_size(volume.mountpoint)
                self._delete(volume.name)
                deleted.append(volume.name)
        for name in deleted:
            self._event("destroy", name, {})
        return deleted, reclaimed

    # --- for containers ------------------------------------------------------------------

    def ensure(self, name: str = "") -> tuple[Volume, bool]:
        """The volume a container mounts: (volume, made now?). A missing name is made
        (as `docker run -v data:/x` does); no name makes an anonymous volume."""
        with self._lock:
            if name:
                with contextlib.suppress(NotFound):
                    return self.get(name), False
            return self.create(name), True

    def copy_up(self, volume: Volume, source: str) -> bool:
        """Fill an empty volume with the image's content at the mount path (Docker's
        copy-on-first-mount). `source` is that path in the container's rootfs; the
        walk never follows symlinks. Returns whether anything was copied."""
        data = volume.mountpoint
        if not os.path.isdir(source) or os.path.islink(source) or os.listdir(data):
            return False
        shutil.copytree(source, data, symlinks=True, dirs_exist_ok=True)
        st = os.lstat(source)
        os.chown(data, st.st_uid, st.st_gid)
        os.chmod(data, stat.S_IMODE(st.st_mode))
        return True

    def disk_usage(self) -> builtins.list[Volume]:
        used = self._in_use()
        out = []
        for volume in self.list():
            size = dir_size(volume.mountpoint)
            refs = len(list(used.get(volume.name, ())))
            out.append(_with_usage(volume, size, refs))
        return out

    def _event(self, action: str, name: str, attributes: dict[str, str]) -> None:
        if self._on_event is not None:
            with contextlib.suppress(Exception):
                self._on_event(action, name, attributes)


def check_name(name: str) -> None:
    if len(name) < 2:
        raise InvalidArgument(
            f"create {name}: volume name is too short, names should be at least two "
            "alphanumeric characters"
        )
    if not VALID_NAME.fullmatch(name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path"
        )


def resolve_binds(
    volumes: VolumeService,
    binds: Iterable[str] = (),
    mounts: Iterable[Mapping[str, object]] = (),
    anonymous: Iterable[str] = (),
) -> builtins.list[BindMount]:
    """HostConfig.Binds (`src:dst[:opts]`), HostConfig.Mounts (`{Type, Source, Target,
    ReadOnly, VolumeOptions}`) and the image's or `-v /path` anonymous volumes, as bind
    mounts. A source that is not an absolute path names a volume (made if missing)."""
    out: builtins.list[BindMount] = []
    for bind in binds:
        source, destination, opts = split_bind(bind)
        readonly = "ro" in opts
        extra = tuple(o for o in opts if o in ("z", "Z", "nocopy"))
        propagation = next((o for o in opts if "private" in o or "shared" in o or "slave" in o), "")
        if source.startswith("/"):
            out.append(BindMount(source, destination, readonly, "", False, propagation, extra))
        else:
            volume, created = volumes.ensure(source)
            out.append(
                BindMount(volume.mountpoint, destination, readonly, volume.name, created, "", extra)
            )
    for mount in mounts:
        kind = str(mount.get("Type") or "volume")
        target = str(mount.get("Target") or mount.get("Destination") or "")
        if not target.startswith("/"):
            raise InvalidArgument(
                f"invalid mount config for type \"{kind}\": invalid mount path: '{target}' mount path must be absolute"
            )
        readonly = bool(mount.get("ReadOnly"))
        source = str(mount.get("Source") or "")
        if kind == "bind":
            if not source.startswith("/"):
                raise InvalidArgument(
                    f"invalid mount config for type \"bind\": invalid mount path: '{source}' "
                    "mount path must be absolute"
                )
            out.append(BindMount(source, target, readonly))
        elif kind == "volume":
            volume, created = volumes.ensure(source)
            vopts = mount.get("VolumeOptions")
            nocopy = isinstance(vopts, Mapping) and bool(vopts.get("NoCopy"))
            out.append(
                BindMount(
                    volume.mountpoint,
                    target,
                    readonly,
                    volume.name,
                    created,
                    "",
                    ("nocopy",) if nocopy else (),
                )
            )
        # tmpfs (and others) are the core's: not volumes
    taken = {m.destination for m in out}
    for destination in anonymous:
        if destination in taken:
            continue
        volume, created = volumes.ensure("")
        out.append(BindMount(volume.mountpoint, destination, False, volume.name, created))
    return out


def split_bind(bind: str) -> tuple[str, str, tuple[str, ...]]:
    """`src:dst[:ro,z]` -> (src, dst, opts); `/dst` alone -> ("", "/dst", ())."""
    parts = bind.split(":")
    if len(parts) == 1:
        if not parts[0].startswith("/"):
            raise InvalidArgument(f"invalid volume specification: '{bind}'")
        return "", parts[0], ()
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{bind}'")
    opts = tuple(o for o in parts[2].split(",") if o) if len(parts) == 3 else ()
    for o in opts:
        if o not in ("ro", "rw", "z", "Z", "nocopy") and not o.endswith(
            ("private", "shared", "slave")
        ):
            raise InvalidArgument(f"invalid mode: {o}")
    if not parts[1].startswith("/"):
        raise InvalidArgument(
            f"invalid volume specification: '{bind}': invalid mount config for type \"volume\": invalid mount path: '{parts[1]}' mount path must be absolute"
        )
    return parts[0], parts[1], opts


def dir_size(path: str) -> int:
    """Bytes of the regular files under `path` (hard links counted once), as `du`."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for top, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def _with_usage(volume: Volume, size: int, refs: int) -> Volume:
    from dataclasses import replace

    return replace(volume, size=size, ref_count=refs)


def _matches(volume: Volume, flt: VolumeFilters, *, in_use: bool) -> bool:
    if flt.name and not any(n in volume.name for n in flt.name):
        return False
    if flt.driver and volume.driver not in flt.driver:
        return False
    if flt.dangling is not None and flt.dangling == in_use:
        return False

    def has(spec: str) -> bool:
        key, sep, value = spec.partition("=")
        return key in volume.labels and (not sep or volume.labels[key] == value)

    return all(has(s) for s in flt.label) and not any(has(s) for s in flt.label_not)


def _now_rfc3339() -> str:
    """dockerd's CreatedAt: time.Now().Format(time.RFC3339) in UTC."""
    return datetime.fromtimestamp(int(time.time()), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
