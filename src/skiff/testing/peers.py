"""Private instances of the real peers, dockerd and containerd, for tests and benchmarks.

Each instance lives in its own short directory under /tmp (a unix socket path
must fit in 108 bytes, and dockerd's exec-root paths grow long), puts its
containers under its own cgroup parent, and never touches the host's default
socket or /var/lib/docker. `stop()` ends what it started by PID, then sweeps:
processes whose command line names its directory (shims outlive their daemon),
processes in its cgroups, mounts under its directory (lazily unmounted), its
cgroups and its files. It returns what the sweep had to clean, so a test can
insist that the daemon cleaned up after itself.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid

from skiff.testing.bundles import make_busybox_rootfs

TIMEOUT = 60.0


def runtime_binary() -> str:
    """The skiff-runtime of the running interpreter's environment."""
    beside = os.path.join(os.path.dirname(sys.executable), "skiff-runtime")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("skiff-runtime")
    if not found:
        raise FileNotFoundError("skiff-runtime is not installed beside this Python")
    return found


# -- images -----------------------------------------------------------------


def busybox_tar(workdir: str) -> bytes:
    """A busybox root filesystem as an uncompressed tar (for `docker import`)."""
    rootfs = make_busybox_rootfs(os.path.join(workdir, "busybox-rootfs"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(rootfs, arcname=".")
    shutil.rmtree(rootfs)
    return buf.getvalue()


def write_oci_archive(layer: bytes, path: str, name: str) -> None:
    """An OCI image layout tar holding one image of one layer (for `ctr image import`).

    containerd names the image after the `io.containerd.image.name` annotation.
    """

    def add(tar: tarfile.TarFile, member: str, data: bytes) -> None:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))

    def blob(tar: tarfile.TarFile, media_type: str, data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        add(tar, f"blobs/sha256/{digest}", data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    config = {
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, "amd64"),
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }
    with tarfile.open(path, "w") as tar:
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": blob(tar, "application/vnd.oci.image.config.v1+json", _json(config)),
            "layers": [blob(tar, "application/vnd.oci.image.layer.v1.tar", layer)],
        }
        top = blob(tar, "application/vnd.oci.image.manifest.v1+json", _json(manifest))
        top["annotations"] = {"io.containerd.image.name": name}
        add(tar, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        add(tar, "index.json", _json({"schemaVersion": 2, "manifests": [top]}))


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()


# -- what a daemon may leave behind ----------------------------------------


def processes_naming(marker: str) -> list[int]:
    """PIDs of processes whose command line contains `marker` (a unique path)."""
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def shim_socket(pid: int) -> str | None:
    """The socket a containerd-shim-runc-v2 listens on (None if `pid` is no shim).

    A shim removes its socket when it exits, but not when it is killed.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    return shim_socket_for(argv)


def shim_socket_for(argv: list[str]) -> str | None:
    """containerd 1.6 names it /run/containerd/s/<sha256 of "address/namespace/id">."""
    if not argv or not argv[0].endswith("containerd-shim-runc-v2"):
        return None
    flags = {flag: value for flag, value in itertools.pairwise(argv) if flag[:1] == "-"}
    try:
        key = f"{flags['-address']}/{flags['-namespace']}/{flags['-id']}"
    except KeyError:
        return None
    return os.path.join("/run/containerd/s", hashlib.sha256(key.encode()).hexdigest())


def wait_exit(pid: int, timeout: float) -> bool:
    """True once `pid` is gone (reaping it if it is our child)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return True
        except ChildProcessError:
            if not _alive(pid):
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")


def kill_and_wait(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        wait_exit(pid, 10)


def mounts_under(prefix: str) -> list[str]:
    """Mount points at or below `prefix`, deepest first."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _unescape(line.split()[4])
            if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
                found.append(point)
    return sorted(set(found), key=len, reverse=True)


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \\ooo octal.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def unmount_all(prefix: str) -> list[str]:
    from skiff.linux.syscalls import MNT_DETACH, umount2

    left = mounts_under(prefix)
    for point in left:
        try:
            umount2(point, MNT_DETACH)
        except OSError:
            pass
    return left


def cgroup_dirs(name: str) -> list[str]:
    """`name` (a top-level cgroup) in every mounted hierarchy where it exists."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] in ("cgroup", "cgroup2"):
                path = os.path.join(_unescape(left.split()[4]), name)
                if os.path.isdir(path):
                    found.append(path)
    return sorted(set(found))


def remove_cgroups(name: str) -> list[str]:
    """Kill what is left in the cgroups called `name`, then remove them, leaves first.

    Returns the container cgroups and processes that were still there (the
    parent `name` itself is expected: runtimes remove only a container's own cgroup).
    """
    dirs = cgroup_dirs(name)
    pids: set[int] = set()
    leaked = []
    for top in dirs:
        for sub, _, _ in os.walk(top):
            if sub != top:
                leaked.append(sub)
            try:
                with open(os.path.join(sub, "cgroup.procs")) as f:
                    pids.update(int(p) for p in f.read().split())
            except OSError:
                continue
    leaked += [f"process {pid}" for pid in sorted(pids)]
    kill_and_wait(sorted(pids))
    for top in dirs:
        for sub, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                os.rmdir(sub)
            except OSError:
                pass
    return leaked


class Peer:
    """What both daemons share: a private directory, a cgroup name, a log, a sweep."""

    kind = "peer"

    def __init__(self) -> None:
        self.base = tempfile.mkdtemp(prefix="/tmp/sk-")
        tag = uuid.uuid4().hex[:10]
        self.cgroup_name = f"skiff-{self.kind}-{tag}"
        # For systemd-style cgroupsPath "slice:prefix:name"; a dash in a slice
        # name means nesting, so there is none here.
        self.slice = f"skiff{self.kind}{tag}.slice"
        self.log_path = os.path.join(self.base, f"{self.kind}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str]) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a Ctrl-C at the test does not hit it
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def _wait_ready(self, ready: object) -> None:
        assert callable(ready)
        deadline = time.monotonic() + TIMEOUT
        while not ready():
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited early:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} did not come up:\n{self.log_tail()}")
            time.sleep(0.1)

    def _terminate(self) -> list[str]:
        """SIGTERM the daemon by PID and wait; SIGKILL if it hangs."""
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append(f"{self.kind} ignored SIGTERM")
                self.proc.kill()
                self.proc.wait()
        return problems

    def _own_mounts(self) -> list[str]:
        """Mounts the daemon itself leaves on exit (not a sign of a leak)."""
        return []

    def _sweep(self) -> list[str]:
        problems = []
        stray = processes_naming(self.base)
        if stray:
            problems.append(f"processes left: {stray}")
            sockets = [s for s in map(shim_socket, stray) if s]
            kill_and_wait(stray)
            for path in sockets:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        for name in (self.cgroup_name, self.slice):
            cgroups = remove_cgroups(name)
            if cgroups:
                problems.append(f"cgroups left: {cgroups}")
            if cgroup_dirs(name):
                problems.append(f"could not remove cgroup {name}")
        leaked = [m for m in unmount_all(self.base) if m not in self._own_mounts()]
        if leaked:
            problems.append(f"mounts left: {leaked}")
        shutil.rmtree(self.base, ignore_errors=True)
        if os.path.exists(self.base):
            problems.append(f"could not remove {self.base}")
        return problems


class PrivateDockerd(Peer):
    """dockerd on its own socket, data root and exec root, with its own containerd."""

    kind = "dockerd"

    def __init__(self, runtimes: dict[str, str], *, bridge: str = "none") -> None:
        """`bridge`: an existing bridge (with its address) for dockerd's default network;
        dockerd then uses it as it is, and still sets no iptables rule and no sysctl."""
        super().__init__()
        self.socket = os.path.join(self.base, "s")
        self.data_root = os.path.join(self.base, "d")
        self.exec_root = os.path.join(self.base, "e")
        self.containerd_pid = 0
        self.env = dict(os.environ)
        self.env["DOCKER_HOST"] = "unix://" + self.socket
        self.env["DOCKER_CONFIG"] = os.path.join(self.base, "cli")  # not ~/.docker
        self.env.pop("DOCKER_CONTEXT", None)
        config = os.path.join(self.base, "daemon.json")  # not /etc/docker/daemon.json
        with open(config, "w") as f:
            f.write("{}")
        argv = [
            "dockerd",
            f"--config-file={config}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={os.path.join(self.base, 'p')}",
            f"--host=unix://{self.socket}",
            f"--cgroup-parent=/{self.cgroup_name}",
            "--exec-opt=native.cgroupdriver=cgroupfs",
            # Without these it takes docker0 and changes the host's firewall.
            f"--bridge={bridge}",
            "--iptables=false",
            "--ip-forward=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--userland-proxy=false",
        ]
        argv += [f"--add-runtime={name}={path}" for name, path in runtimes.items()]
        self._spawn(argv)
        try:
            self._wait_ready(self._pinged)
            self.containerd_pid = self._child("containerd")
        except BaseException:
            self.stop()
            raise

    def _own_mounts(self) -> list[str]:
        # dockerd makes its data root a private bind mount of itself and keeps
        # the host's network namespace bound in exec-root; both outlive it.
        return [self.data_root, os.path.join(self.exec_root, "netns", "default")]

    @property
    def runtime_root(self) -> str:
        """Where the shim keeps runtime state for dockerd's containers."""
        return os.path.join(self.exec_root, "runtime-runc", "moby")

    def _pinged(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(self.socket)
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                return s.recv(4096).rstrip().endswith(b"OK")
        except OSError:
            return False

    def _child(self, name: str) -> int:
        assert self.proc is not None
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index(b"(") + 1 : stat.rindex(b")")].decode()
            ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
            if ppid == self.proc.pid and comm == name:
                return int(entry)
        return 0

    def docker(
        self, *args: str, input: str | None = None, timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def load_image(self, tar: bytes, name: str) -> None:
        proc = subprocess.run(
            ["docker", "import", "-", name],
            env=self.env,
            input=tar,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"docker import failed: {proc.stderr.decode()}")

    def stop(self) -> list[str]:
        """Stop everything; return what had to be cleaned up behind dockerd."""
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq").stdout.split()
            if ids:
                self.docker("rm", "-f", *ids)
        problems += self._terminate()
        if self.containerd_pid and not wait_exit(self.containerd_pid, TIMEOUT):
            problems.append(f"dockerd's containerd {self.containerd_pid} outlived it")
            kill_and_wait([self.containerd_pid])
        return problems + self._sweep()


class PrivateContainerd(Peer):
    """containerd with its own root, state, sockets and namespace; no CRI."""

    kind = "containerd"

    def __init__(self) -> None:
        super().__init__()
        self.socket = os.path.join(self.base, "c.sock")
        self.namespace = self.cgroup_name
        self.fifo_dir = os.path.join(self.base, "fifo")
        config = os.path.join(self.base, "config.toml")
        disabled = [
            "io.containerd.grpc.v1.cri",
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.zfs",
        ]
        with open(config, "w") as f:
            f.write(
                "version = 2\n"
                f'root = "{self.base}/root"\n'
                f'state = "{self.base}/state"\n'
                f"disabled_plugins = {json.dumps(disabled)}\n"
                f'[grpc]\naddress = "{self.socket}"\n'
                f'[ttrpc]\naddress = "{self.socket}.ttrpc"\n'
                '[debug]\naddress = ""\n'
                '[metrics]\naddress = ""\n'
            )
        self._spawn(["containerd", "--config", config])
        try:
            self._wait_ready(lambda: self.ctr("version", timeout=10).returncode == 0)
        except BaseException:
            self.stop()
            raise

    def ctr(self, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", self.socket, "--namespace", self.namespace, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run_flags(self, runtime: str, container_id: str) -> list[str]:
        """`ctr run` flags that keep a container's files and cgroup ours."""
        return [
            f"--runc-binary={runtime}",
            f"--runc-root={self.base}/runc",
            f"--fifo-dir={self.fifo_dir}",
            f"--cgroup=/{self.cgroup_name}/{container_id}",
        ]

    def stop(self) -> list[str]:
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            for task in self.ctr("task", "ls", "-q").stdout.split():
                self.ctr("task", "kill", "-s", "KILL", task)
                self.ctr("task", "delete", "--force", task)
            for container in self.ctr("container", "ls", "-q").stdout.split():
                self.ctr("container", "delete", container)
        problems += self._terminate()
        return problems + self._sweep()
