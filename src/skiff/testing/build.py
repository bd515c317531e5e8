"""A fake build Executor over plain folders, for builder tests that run in milliseconds.

Images are folders (whole root filesystems, copied) plus a config dict; a container is
a copy of its image's folder. `run` interprets a tiny shell: commands separated by
`&&` or `;`: `echo WORDS [> FILE]`, `exit N`, `true`, `false`, `mkdir -p DIR`,
`touch FILE`; a test can pass its own `runner` for anything else.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from skiff.build.copier import rootfs_path
from skiff.build.executor import Container, RunSpec
from skiff.errors import NotFound

Runner = Callable[[Container, RunSpec, Callable[[bytes], None]], int]


class FakeExecutor:
    def __init__(self, root: str | None = None, runner: Runner | None = None) -> None:
        self.root = root or tempfile.mkdtemp(prefix="skiff-fake-build-")
        os.makedirs(self.root, exist_ok=True)
        self.images: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}
        self.containers: dict[str, Container] = {}
        self.runs: list[RunSpec] = []
        self.specs: dict[str, RunSpec] = {}
        self.pulls: list[str] = []
        self.runner = runner or shell_runner
        self._n = 0

    # -- setup -------------------------------------------------------------------------

    def add_image(
        self, ref: str, files: Mapping[str, str], config: dict[str, Any] | None = None
    ) -> str:
        folder = tempfile.mkdtemp(dir=self.root)
        for path, content in files.items():
            full = os.path.join(folder, path.lstrip("/"))
            if path.endswith("/"):
                os.makedirs(full, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(content)
        image = {
            "architecture": "amd64",
            "os": "linux",
            "config": config or {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [_tree_digest(folder)]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "fake"}],
        }
        image_id = self._store(image, folder, "")
        self.refs[ref] = image_id
        return image_id

    def _store(self, image: dict[str, Any], folder: str, parent: str) -> str:
        data = json.dumps(image, sort_keys=True).encode()
        image_id = "sha256:" + hashlib.sha256(data).hexdigest()
        self.images[image_id] = {"config": copy.deepcopy(image), "folder": folder, "parent": parent}
        return image_id

    # -- the protocol ------------------------------------------------------------------

    def resolve_image(self, ref: str, *, pull: bool, platform: str) -> str:
        if pull:
            self.pulls.append(ref)
        name = ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"
        if name in self.refs:
            return self.refs[name]
        if ref in self.images:
            return ref
        raise NotFound(f"pull access denied for {ref}, repository does not exist")

    def image_config(self, image_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.images[image_id]["config"])

    def image_exists(self, image_id: str) -> bool:
        return image_id in self.images

    def create(self, image_id: str, spec: RunSpec | None = None) -> Container:
        self._n += 1
        cid = hashlib.sha256(f"container{self._n}".encode()).hexdigest()
        rootfs = os.path.join(self.root, "c-" + cid[:12])
        if image_id:
            _clone(self.images[image_id]["folder"], rootfs)
        else:
            os.makedirs(rootfs)
        container = Container(cid, rootfs)
        self.containers[cid] = container
        if spec is not None:
            self.specs[cid] = spec
        return container

    def run(self, container: Container, output: Callable[[bytes], None]) -> int:
        spec = self.specs.pop(container.id)
        self.runs.append(spec)
        return self.runner(container, spec, output)

    def commit(self, container: Container | None, parent: str, config: Mapping[str, Any]) -> str:
        image = copy.deepcopy(dict(config))
        if container is not None:
            folder = tempfile.mkdtemp(dir=self.root)
            shutil.rmtree(folder)
            _clone(container.rootfs, folder)
            image["rootfs"]["diff_ids"].append(_tree_digest(folder))
        else:
            folder = self.images[parent]["folder"] if parent else tempfile.mkdtemp(dir=self.root)
        return self._store(image, folder, parent)

    def remove(self, container: Container) -> None:
        self.containers.pop(container.id, None)
        shutil.rmtree(container.rootfs, ignore_errors=True)

    def tag(self, image_id: str, ref: str) -> None:
        name = ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"
        self.refs[name] = image_id

    # -- inspection --------------------------------------------------------------------

    def read(self, image_id: str, path: str) -> str:
        with open(rootfs_path(self.images[image_id]["folder"], path)) as f:
            return f.read()

    def stat(self, image_id: str, path: str) -> os.stat_result:
        return os.lstat(rootfs_path(self.images[image_id]["folder"], path))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _clone(src: str, dst: str) -> None:
    # cp -a keeps owners, modes and times, as a snapshot would
    subprocess.run(["cp", "-a", src, dst], check=True)


def _tree_digest(folder: str) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            h.update(os.path.relpath(full, folder).encode())
            if os.path.isfile(full) and not os.path.islink(full):
                with open(full, "rb") as f:
                    h.update(f.read())
    return "sha256:" + h.hexdigest()


def shell_runner(container: Container, spec: RunSpec, output: Callable[[bytes], None]) -> int:
    argv = list(spec.argv)
    script = argv[-1] if len(argv) >= 3 and argv[1] == "-c" else shlex.join(argv)
    env = dict(e.partition("=")[::2] for e in spec.env)
    for part in script.replace("&&", ";").split(";"):
        words = shlex.split(part)
        if not words:
            continue
        words = [_expand(w, env) for w in words]
        cmd, args = words[0], words[1:]
        if cmd == "exit":
            return int(args[0]) if args else 0
        if cmd == "false":
            return 1
        if cmd == "true":
            continue
        if cmd == "echo":
            if ">" in args:
                i = args.index(">")
                target = rootfs_path(container.rootfs, os.path.join(spec.workdir, args[i + 1]))
                with open(target, "w") as f:
                    f.write(" ".join(args[:i]) + "\n")
            else:
                output((" ".join(args) + "\n").encode())
        elif cmd == "mkdir":
            for a in args:
                if a != "-p":
                    os.makedirs(rootfs_path(container.rootfs, a), exist_ok=True)
        elif cmd == "touch":
            for a in args:
                with open(rootfs_path(container.rootfs, os.path.join(spec.workdir, a)), "a"):
                    pass
        else:
            output(f"sh: {cmd}: not found\n".encode())
            return 127
    return 0


def _expand(word: str, env: Mapping[str, str]) -> str:
    for key in sorted(env, key=len, reverse=True):
        word = word.replace("${" + key + "}", env[key]).replace("$" + key, env[key])
    return word
