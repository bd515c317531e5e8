"""`docker build` (classic builder, DOCKER_BUILDKIT=0) with the real docker CLI against a
real skiffd, beside a private dockerd 20.10 building the same Dockerfile: the image
config, history and the layers' file lists must match (ids and content hashes may
differ); the cache on a rebuild; a failing RUN; a syntax error; the skiff CLI.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from skiff.testing.peers import PrivateDockerd
from tests.integration.test_containers import (
    DOCKER,
    Daemon,
    _mounts_under,
    _shim_parent_pid,
    dk,
    needs_docker,
    skiff,
)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="builds run containers: needs root"),
    pytest.mark.skipif(
        not any(os.path.exists(p) for p in ("/bin/busybox", "/usr/bin/busybox")),
        reason="busybox-static not installed",
    ),
    needs_docker,
]

BASE = "busybox:skiff-test"  # the same imported tar on both daemons: identical bases

FULL = f"""ARG BASE={BASE}
FROM ${{BASE}} AS base
LABEL maintainer="me" version=1
ENV A=1 B="two words"
ENV C legacy value
ARG X=dflt
RUN echo "run $A $X" > /ran && echo out-line
WORKDIR /app
COPY hello.txt dir ./
COPY --chown=1:2 hello.txt /owned.txt
ADD files.tar /extracted/
USER nobody
EXPOSE 80 443/udp
VOLUME /data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD echo ok
SHELL ["/bin/sh", "-c"]
ONBUILD RUN echo onbuild
MAINTAINER someone
ENTRYPOINT ["/bin/sh", "-c"]
CMD echo hi
"""


@pytest.fixture(scope="module")
def daemon(busybox_layer: bytes) -> Iterator[Daemon]:
    root = Path(tempfile.mkdtemp(prefix="skb-", dir="/tmp"))  # short: unix socket paths
    d = Daemon(root, str(root / "s.sock"))
    d.start()
    try:
        imported = subprocess.run(
            [DOCKER or "docker", "import", "-", BASE],
            input=busybox_layer,
            env={"PATH": os.environ["PATH"], "DOCKER_HOST": d.host, "HOME": str(root)},
            capture_output=True,
            check=False,
        )
        assert imported.returncode == 0, imported.stderr
        yield d
    finally:
        try:
            if d.proc is not None and d.proc.poll() is None:
                client = docker.DockerClient(base_url=d.host)
                for c in client.containers.list(all=True):
                    c.remove(force=True)
                client.close()
        finally:
            d.stop()
            parent = _shim_parent_pid(d)
            if parent:
                os.kill(parent, signal.SIGKILL)
        left = _mounts_under(d.root)
        shutil.rmtree(root, ignore_errors=True) if not left else None
        assert not left, f"mounts left behind: {left}"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "dir" / "sub").mkdir(parents=True)
    (ctx / "hello.txt").write_text("hello\n")
    (ctx / "dir" / "a").write_text("x\n")
    (ctx / "dir" / "sub" / "b").write_text("y\n")
    (ctx / ".dockerignore").write_text("*.log\n")
    (ctx / "x.log").write_text("ignored\n")
    with tarfile.open(ctx / "files.tar", "w") as tar:
        tar.add(ctx / "hello.txt", "hello.txt")
        tar.add(ctx / "dir", "dir")
    (ctx / "Dockerfile").write_text(FULL)
    return ctx


def build(d: Daemon, ctx: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(d.root),
        "DOCKER_CONFIG": str(d.root / "docker-config"),
        "DOCKER_HOST": d.host,
        "DOCKER_BUILDKIT": "0",
    }
    return subprocess.run(
        [DOCKER or "docker", "build", *args, str(ctx)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def ref_build(ref: PrivateDockerd, ctx: Path, *args: str) -> subprocess.CompletedProcess[str]:
    ref.env["DOCKER_BUILDKIT"] = "0"
    return ref.docker("build", *args, str(ctx), timeout=180)


def _ref_docker(ref: PrivateDockerd, *args: str) -> subprocess.CompletedProcess[str]:
    return ref.docker(*args)


def _save_layers(env_host: str, image: str) -> list[list[tuple[str, int, int, int, int]]]:
    data = subprocess.run(
        [DOCKER or "docker", "save", image],
        env={"PATH": os.environ["PATH"], "DOCKER_HOST": env_host},
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as outer:
        extracted = outer.extractfile("manifest.json")
        assert extracted is not None
        manifest = json.load(extracted)[0]
        layers = []
        for name in manifest["Layers"]:
            f = outer.extractfile(name)
            assert f is not None
            with tarfile.open(fileobj=f) as inner:
                layers.append(
                    sorted(
                        (
                            m.name.rstrip("/"),
                            stat.S_IMODE(m.mode),
                            m.uid,
                            m.gid,
                            m.size if m.isfile() else 0,
                        )
                        for m in inner.getmembers()
                    )
                )
    return layers


_HASH = re.compile(r"(file|dir|multi):[0-9a-f]{64}")


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    def cfg(c: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in c.items() if k not in ("Image", "Hostname")}

    return {
        "Config": cfg(doc["Config"]),
        "ContainerConfig": {
            **cfg(doc["ContainerConfig"]),
            "Cmd": [_HASH.sub("HASH", x) for x in doc["ContainerConfig"]["Cmd"] or []],
        },
        "Author": doc["Author"],
        "Os": doc["Os"],
        "Architecture": doc["Architecture"],
        "Layers": len(doc["RootFS"]["Layers"]),
    }


def _history(run: Any, target: Any, image: str) -> list[str]:
    result = run(target, "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", image)
    assert result.returncode == 0, result.stderr
    return [_HASH.sub("HASH", line) for line in result.stdout.splitlines()]


def test_every_instruction_as_dockerd(
    daemon: Daemon, context: Path, dockerd: PrivateDockerd
) -> None:
    ours = build(daemon, context, "-t", "full:1", "--build-arg", "X=given")
    assert ours.returncode == 0, ours.stderr
    assert "Step 21/21 : CMD echo hi" in ours.stdout
    assert "out-line\n" in ours.stdout
    assert "Successfully tagged full:1" in ours.stdout
    # the reference: dockerd's busybox:skiff-test is the same imported tar
    theirs = ref_build(dockerd, context, "-t", "full:1", "--build-arg", "X=given")
    assert theirs.returncode == 0, theirs.stderr
    ours_doc = json.loads(dk(daemon, "image", "inspect", "full:1").stdout)[0]
    theirs_doc = json.loads(dockerd.docker("image", "inspect", "full:1").stdout)[0]
    assert _comparable(ours_doc) == _comparable(theirs_doc)
    assert _history(dk, daemon, "full:1")[:-1] == _history(_ref_docker, dockerd, "full:1")[:-1]
    assert (
        _save_layers(daemon.host, "full:1")[1:]
        == _save_layers(dockerd.env["DOCKER_HOST"], "full:1")[1:]
    )
    ran = dk(daemon, "run", "--rm", "--entrypoint", "cat", "full:1", "/ran", "/app/sub/b")
    assert (ran.returncode, ran.stdout) == (0, "run 1 given\ny\n"), ran.stderr
    ls = dk(
        daemon,
        "run",
        "--rm",
        "--entrypoint",
        "ls",
        "full:1",
        "-ln",
        "/owned.txt",
        "/extracted/dir/a",
    )
    assert " 1        2 " in ls.stdout.splitlines()[1] or " 1 2 " in ls.stdout, ls.stdout


def test_rebuild_uses_the_cache(daemon: Daemon, context: Path) -> None:
    (context / "Dockerfile").write_text(
        f'FROM {BASE}\nCOPY hello.txt /\nRUN echo built > /b\nCMD ["sh"]\n'
    )
    first = build(daemon, context, "-t", "cached:1")
    assert first.returncode == 0, first.stderr
    os.utime(context / "hello.txt", (1, 1))  # an mtime alone keeps the cache
    second = build(daemon, context, "-t", "cached:1")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count(" ---> Using cache") == 3
    assert first.stdout.splitlines()[-2] == second.stdout.splitlines()[-2]  # same id
    (context / "hello.txt").write_text("changed\n")
    third = build(daemon, context)
    assert third.returncode == 0, third.stderr
    assert "Using cache" not in third.stdout
    assert "Running in" in third.stdout  # the RUN after the COPY ran again
    nocache = build(daemon, context, "--no-cache")
    assert "Using cache" not in nocache.stdout
    assert not dk(daemon, "ps", "-aq").stdout.strip()


def test_failing_run_reports_code_and_leaves_nothing(daemon: Daemon, context: Path) -> None:
    (context / "Dockerfile").write_text(f"FROM {BASE}\nRUN echo before && exit 3\n")
    result = build(daemon, context)
    assert result.returncode == 3
    assert (
        "The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3"
        in result.stderr
    )
    assert "before\n" in result.stdout
    assert not dk(daemon, "ps", "-aq").stdout.strip()
    data = str(daemon.data)
    assert not [m for m in _mounts_under(daemon.root) if m.startswith(data)]
    assert not os.listdir(daemon.data / "builds")


def test_syntax_error_before_anything_runs(daemon: Daemon, context: Path) -> None:
    before = dk(daemon, "images", "-aq").stdout
    (context / "Dockerfile").write_text(f"FROM {BASE}\nRUN echo hi > /x\nFORM x\n")
    result = build(daemon, context)
    assert result.returncode != 0
    assert "dockerfile parse error line 3: unknown instruction: FORM" in result.stderr
    assert "Step 1" not in result.stdout
    assert dk(daemon, "images", "-aq").stdout == before


def test_skiff_cli_multistage_target_ignore_iidfile(
    daemon: Daemon, context: Path, tmp_path: Path
) -> None:
    (context / "Dockerfile").write_text(
        f"FROM {BASE} AS one\nRUN echo one > /one\n"
        f"FROM {BASE} AS unused\nRUN exit 9\n"
        f"FROM {BASE} AS two\nCOPY --from=one /one /copied\nCOPY . /ctx/\n"
    )
    iid = tmp_path / "iid"
    result = skiff(
        daemon,
        "build",
        "-t",
        "multi:1",
        "--target",
        "two",
        "--iidfile",
        str(iid),
        "--label",
        "l=v",
        str(context),
    )
    assert result.returncode == 0, result.stderr
    image_id = iid.read_text()
    assert image_id.startswith("sha256:")
    doc = json.loads(dk(daemon, "image", "inspect", "multi:1").stdout)[0]
    assert doc["Id"] == image_id
    assert doc["Config"]["Labels"]["l"] == "v"
    ls = dk(daemon, "run", "--rm", "multi:1", "sh", "-c", "cat /copied; ls -a /ctx")
    assert ls.stdout.startswith("one\n"), ls.stderr
    assert "x.log" not in ls.stdout  # .dockerignore'd
    assert "hello.txt" in ls.stdout
    quiet = skiff(daemon, "build", "-q", str(context))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip().startswith("sha256:")
    pruned = skiff(daemon, "builder", "prune", "-f")
    assert pruned.returncode == 0, pruned.stderr
    assert "Total reclaimed space" in pruned.stdout
