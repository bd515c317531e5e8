"""Images end to end: a real skiffd on a temporary data root and socket, a busybox image
bootstrapped from the host, then the real docker CLI, the Docker SDK for Python, the
skiff CLI and raw sockets. With dockerd installed, images also go both ways between
skiffd and a private dockerd (its own data root, socket, no bridge, no iptables)."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from skiff.testing.bundles import make_busybox_rootfs
from skiff.testing.daemon import PrivateSkiffd, terminate, wait_for_socket

DOCKER = shutil.which("docker")
DOCKERD = shutil.which("dockerd")
needs_docker = pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
needs_busybox = pytest.mark.skipif(
    not any(os.path.exists(p) for p in ("/bin/busybox", "/usr/bin/busybox")),
    reason="busybox-static not installed",
)
pytestmark = needs_busybox


Daemon = PrivateSkiffd  # the fixture's type, as test_pull_push_api imports it


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("skiffd-images"))
    try:
        d.start()
        result = skiff(d, "image", "bootstrap", "busybox")
        assert result.returncode == 0, result.stderr
        yield d
    finally:
        d.close()


@pytest.fixture(scope="module")
def rootfs_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rootfs")
    make_busybox_rootfs(str(root / "fs"))
    path = root / "rootfs.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(root / "fs", arcname=".")
    return path


def docker_cli(
    host: str, *args: str, stdin: bytes | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    assert DOCKER is not None
    config = home or Path(tempfile.gettempdir())
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(config),
        "DOCKER_CONFIG": str(config / "docker-config"),
        "DOCKER_HOST": host,
    }
    return subprocess.run(
        [DOCKER, *args],
        env=env,
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True,
        text=True,
        encoding="latin-1",
        timeout=60,
        check=False,
    )


def dk(d: Daemon, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return docker_cli(d.host, *args, stdin=stdin, home=d.root)


def skiff(d: Daemon, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skiff.cli.main", "-H", d.host, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )  # type: ignore[return-value]


def _lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


# -- the docker CLI ---------------------------------------------------------------------


@needs_docker
def test_docker_images_and_inspect(daemon: Daemon) -> None:
    result = dk(daemon, "images")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    busybox = next(r.split() for r in rows[1:] if r.startswith("busybox "))
    assert busybox[1] == "latest"
    assert len(busybox[2]) == 12
    assert busybox[-1].endswith("MB")
    image_id = dk(daemon, "image", "inspect", "busybox", "--format", "{{.Id}}").stdout.strip()
    assert image_id.startswith("sha256:")
    assert image_id[7:19] == busybox[2]
    inspect = json.loads(dk(daemon, "image", "inspect", "busybox").stdout)
    assert inspect[0]["Config"]["Cmd"] == ["sh"]
    assert inspect[0]["RootFS"]["Type"] == "layers"
    quiet = dk(daemon, "images", "-q").stdout.split()
    assert busybox[2] in quiet
    full = dk(daemon, "images", "--no-trunc", "busybox").stdout
    assert image_id in full
    digests = dk(daemon, "images", "--digests").stdout.splitlines()[0].split()
    assert digests[:3] == ["REPOSITORY", "TAG", "DIGEST"]
    fmt = dk(daemon, "images", "--format", "{{.Repository}}:{{.Tag}}", "busybox").stdout
    assert fmt.strip() == "busybox:latest"


@needs_docker
def test_docker_missing_image_errors(daemon: Daemon) -> None:
    result = dk(daemon, "image", "inspect", "nope")
    assert result.returncode == 1
    assert "No such image: nope" in result.stderr
    result = dk(daemon, "rmi", "nope")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error response from daemon: No such image: nope:latest"
    result = dk(daemon, "history", "nope")
    assert result.returncode == 1
    assert "No such image: nope:latest" in result.stderr


@needs_docker
def test_docker_history(daemon: Daemon) -> None:
    result = dk(daemon, "history", "busybox")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert len(rows) >= 2
    plain = dk(daemon, "history", "-H=false", "--format", "{{.Size}}", "busybox").stdout.split()
    assert all(size.isdigit() for size in plain)


@needs_docker
def test_docker_tag_and_rmi(daemon: Daemon) -> None:
    assert dk(daemon, "tag", "busybox", "mine:v1").returncode == 0
    assert dk(daemon, "tag", "busybox", "localhost:5000/team/app:2").returncode == 0
    tags = dk(daemon, "image", "inspect", "busybox", "--format", "{{json .RepoTags}}").stdout
    assert set(json.loads(tags)) >= {"busybox:latest", "mine:v1", "localhost:5000/team/app:2"}
    result = dk(daemon, "rmi", "mine:v1", "localhost:5000/team/app:2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Untagged: mine:v1",
        "Untagged: localhost:5000/team/app:2",
    ]
    bad = dk(daemon, "tag", "busybox", "Bad:Tag")
    assert bad.returncode != 0


@needs_docker
def test_docker_rmi_by_id_with_two_tags_needs_force(daemon: Daemon) -> None:
    assert dk(daemon, "tag", "busybox", "second:1").returncode == 0
    image_id = dk(daemon, "image", "inspect", "busybox", "--format", "{{.Id}}").stdout.strip()
    result = dk(daemon, "rmi", image_id[7:19])
    assert result.returncode == 1
    assert "must be forced" in result.stderr
    assert dk(daemon, "rmi", "second:1").returncode == 0


@needs_docker
def test_docker_import_file_and_stdin(daemon: Daemon, rootfs_tar: Path) -> None:
    result = dk(
        daemon,
        "import",
        "-c",
        'CMD ["sh"]',
        "-c",
        "ENV A=b",
        "-m",
        "msg",
        str(rootfs_tar),
        "imp:one",
    )
    assert result.returncode == 0, result.stderr
    image_id = result.stdout.strip()
    assert image_id.startswith("sha256:")
    config = json.loads(
        dk(daemon, "image", "inspect", "imp:one", "--format", "{{json .Config}}").stdout
    )
    assert config["Cmd"] == ["sh"]
    assert "A=b" in config["Env"]
    history = dk(daemon, "history", "--format", "{{.Comment}}", "imp:one").stdout
    assert "msg" in history
    piped = dk(daemon, "import", "-", "imp:two", stdin=rootfs_tar.read_bytes())
    assert piped.returncode == 0, piped.stderr
    bad = dk(daemon, "import", "-c", "BOGUS x", str(rootfs_tar))
    assert bad.returncode == 1
    assert "bogus" in bad.stderr.lower()  # dockerd: "bogus is not a valid change command"
    assert dk(daemon, "rmi", "imp:one", "imp:two").returncode == 0


@needs_docker
def test_docker_save_load_round_trip(daemon: Daemon, tmp_path: Path) -> None:
    archive = tmp_path / "bb.tar"
    assert dk(daemon, "tag", "busybox", "saved:1").returncode == 0
    result = dk(daemon, "save", "-o", str(archive), "saved:1")
    assert result.returncode == 0, result.stderr
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["saved:1"]
    before = dk(daemon, "image", "inspect", "saved:1", "--format", "{{.Id}}").stdout.strip()
    assert dk(daemon, "rmi", "saved:1").returncode == 0
    loaded = dk(daemon, "load", "-i", str(archive))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "Loaded image: saved:1"
    after = dk(daemon, "image", "inspect", "saved:1", "--format", "{{.Id}}").stdout.strip()
    assert after == before
    assert dk(daemon, "rmi", "saved:1").returncode == 0
    piped = dk(daemon, "load", stdin=archive.read_bytes())
    assert piped.stdout.strip() == "Loaded image: saved:1"
    assert dk(daemon, "rmi", "saved:1").returncode == 0
    missing = dk(daemon, "save", "-o", str(tmp_path / "x.tar"), "nope")
    assert missing.returncode == 1
    assert "No such image" in missing.stderr


@needs_docker
def test_docker_image_prune_and_df(daemon: Daemon, rootfs_tar: Path) -> None:
    made = dk(daemon, "import", str(rootfs_tar))  # untagged: dangling
    assert made.returncode == 0, made.stderr
    dangling_id = made.stdout.strip()
    df = dk(daemon, "system", "df")
    assert df.returncode == 0, df.stderr
    rows = _lines(df.stdout)
    assert rows[0] == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert rows[1][0] == "Images"
    assert int(rows[1][1]) >= 2
    listed = dk(daemon, "images", "--filter", "dangling=true", "-q").stdout.split()
    assert listed == [dangling_id[7:19]]
    result = dk(daemon, "image", "prune", "-f")
    assert result.returncode == 0, result.stderr
    assert f"deleted: {dangling_id}" in result.stdout
    assert "Total reclaimed space:" in result.stdout
    assert dk(daemon, "images", "--filter", "dangling=true", "-q").stdout.split() == []
    bad = dk(daemon, "image", "prune", "-f", "--filter", "bogus=1")
    assert bad.returncode == 1
    assert "invalid filter 'bogus'" in bad.stderr


# -- the Docker SDK ---------------------------------------------------------------------


def test_sdk_image_calls(daemon: Daemon, rootfs_tar: Path) -> None:
    client = docker.DockerClient(base_url=daemon.host, version="1.44", timeout=30)
    try:
        names = {tag for image in client.images.list() for tag in image.tags}
        assert "busybox:latest" in names
        image = client.images.get("busybox")
        assert image.attrs["Config"]["Cmd"] == ["sh"]
        assert image.tag("sdk", "one")
        assert "sdk:one" in client.images.get("busybox").tags
        assert image.history()[0]["Id"] == image.id
        archive = b"".join(client.images.get("sdk:one").save(named="sdk:one"))
        client.images.remove("sdk:one")
        [loaded] = client.images.load(archive)
        assert "sdk:one" in loaded.tags
        raw = b"".join(client.api.get_image("sdk:one"))
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            assert tar.getmember("manifest.json")
        client.images.remove("sdk:one")
        result = client.api.import_image(
            src=rootfs_tar.read_bytes(), repository="sdkimp", tag="t", changes=["CMD sh"]
        )
        assert "sha256:" in str(result)
        assert client.images.get("sdkimp:t").attrs["Config"]["Cmd"] == ["/bin/sh", "-c", "sh"]
        client.images.remove("sdkimp:t")
        pruned = client.images.prune()
        assert "SpaceReclaimed" in pruned
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("nope")
        assert any("busybox:latest" in i["RepoTags"] for i in client.df()["Images"])
        assert client.info()["Images"] >= 1
    finally:
        client.close()


# -- raw requests -----------------------------------------------------------------------


def _raw(daemon: Daemon, request: bytes) -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(daemon.socket)
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def test_malformed_image_requests_get_400(daemon: Daemon) -> None:
    requests = [
        b"GET /v1.44/images/json?all=maybe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /v1.44/images/json?filters=%7Bbad HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /v1.44/images/json?filters=%7B%22x%22%3A%5B%221%22%5D%7D HTTP/1.1\r\n"
        b"Host: x\r\nConnection: close\r\n\r\n",
        b"POST /v1.44/images/busybox/tag HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: 0\r\n\r\n",
        b"POST /v1.44/images/create?fromSrc=-&changes=NOPE HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\nContent-Length: 0\r\n\r\n",
        b"DELETE /v1.44/images/busybox?force=perhaps HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\n\r\n",
    ]
    for request in requests:
        status, body = _raw(daemon, request)
        assert status == 400, (request, body)
        assert json.loads(body)["message"]
    # garbage as a load body is reported, in-band or as a status, never a hang
    status, body = _raw(
        daemon,
        b"POST /v1.44/images/load?quiet=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: 9\r\n\r\nnot a tar",
    )
    assert status == 400 or b'"error"' in body
    status, _ = _raw(daemon, b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200


# -- the skiff CLI ----------------------------------------------------------------------


def test_skiff_cli_images(daemon: Daemon, tmp_path: Path, rootfs_tar: Path) -> None:
    result = skiff(daemon, "images")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.splitlines()[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.startswith("busybox ") for line in out.splitlines())
    assert skiff(daemon, "tag", "busybox", "cli:1").returncode == 0
    inspect = json.loads(skiff(daemon, "image", "inspect", "cli:1").stdout)
    assert inspect[0]["RepoTags"]
    history = skiff(daemon, "history", "cli:1").stdout.decode()
    assert history.splitlines()[0].split()[:2] == ["IMAGE", "CREATED"]
    archive = tmp_path / "cli.tar"
    assert skiff(daemon, "save", "-o", str(archive), "cli:1").returncode == 0
    removed = skiff(daemon, "rmi", "cli:1")
    assert removed.stdout.decode().strip() == "Untagged: cli:1"
    loaded = skiff(daemon, "load", "-i", str(archive))
    assert loaded.stdout.decode().strip() == "Loaded image: cli:1"
    imported = skiff(daemon, "import", "-m", "m", str(rootfs_tar), "cli:imp")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.decode().startswith("sha256:")
    missing = skiff(daemon, "rmi", "nope")
    assert missing.returncode == 1
    assert (
        missing.stderr.decode().strip() == "Error response from daemon: No such image: nope:latest"
    )
    assert skiff(daemon, "rmi", "cli:1", "cli:imp").returncode == 0
    df = skiff(daemon, "system", "df").stdout.decode()
    assert df.splitlines()[1].split()[0] == "Images"
    prune = skiff(daemon, "image", "prune", "-f")
    assert "Total reclaimed space:" in prune.stdout.decode()


def test_skiff_and_docker_print_the_same_images_table(daemon: Daemon) -> None:
    if DOCKER is None:
        pytest.skip("docker CLI not installed")
    ours = skiff(daemon, "images", "--format", "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}")
    theirs = dk(daemon, "images", "--format", "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}")
    assert sorted(ours.stdout.decode().splitlines()) == sorted(theirs.stdout.splitlines())
    ours = skiff(daemon, "history", "busybox")
    theirs = dk(daemon, "history", "busybox")
    assert [line.rstrip() for line in ours.stdout.decode().splitlines()] == [
        line.rstrip() for line in theirs.stdout.splitlines()
    ]


# -- round trips with the real dockerd ----------------------------------------------------


@pytest.fixture(scope="module")
def dockerd() -> Iterator[str]:
    if DOCKERD is None or DOCKER is None or os.geteuid() != 0:
        pytest.skip("dockerd (and root) needed")
    root = tempfile.mkdtemp(prefix="skd-")  # short: unix socket paths are limited
    sock = os.path.join(root, "d.sock")
    argv = [
        DOCKERD,
        "--data-root", os.path.join(root, "data"),
        "--exec-root", os.path.join(root, "exec"),
        "--pidfile", os.path.join(root, "pid"),
        "-H", "unix://" + sock,
        "--bridge", "none",
        "--iptables=false",
    ]  # fmt: skip
    log = open(os.path.join(root, "log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        wait_for_socket(sock, proc, "dockerd")
        deadline = time.monotonic() + 30
        while docker_cli("unix://" + sock, "version").returncode != 0:
            assert time.monotonic() < deadline, "dockerd does not answer"
            time.sleep(0.2)
        yield "unix://" + sock
    finally:
        terminate(proc)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def test_round_trip_with_dockerd(
    daemon: Daemon, dockerd: str, rootfs_tar: Path, tmp_path: Path
) -> None:
    # dockerd -> skiff
    result = docker_cli(dockerd, "import", "-c", 'CMD ["sh"]', str(rootfs_tar), "fromdocker:1")
    assert result.returncode == 0, result.stderr
    docker_id = result.stdout.strip()
    archive = tmp_path / "fromdocker.tar"
    assert docker_cli(dockerd, "save", "-o", str(archive), "fromdocker:1").returncode == 0
    loaded = dk(daemon, "load", "-i", str(archive))
    assert loaded.stdout.strip() == "Loaded image: fromdocker:1", loaded.stderr
    skiff_id = dk(daemon, "image", "inspect", "fromdocker:1", "--format", "{{.Id}}").stdout
    assert skiff_id.strip() == docker_id
    # skiff -> dockerd
    back = tmp_path / "fromskiff.tar"
    assert dk(daemon, "save", "-o", str(back), "busybox").returncode == 0
    result = docker_cli(dockerd, "load", "-i", str(back))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Loaded image: busybox:latest"
    ours = dk(daemon, "image", "inspect", "busybox", "--format", "{{.Id}}").stdout
    theirs = docker_cli(dockerd, "image", "inspect", "busybox", "--format", "{{.Id}}").stdout
    assert ours == theirs
    assert dk(daemon, "rmi", "fromdocker:1").returncode == 0
