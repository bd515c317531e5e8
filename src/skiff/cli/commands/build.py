"""`skiff build [OPTIONS] PATH`: an image from a Dockerfile, like `docker build` (classic).

The context folder goes to the daemon as a tar honouring .dockerignore (the Dockerfile
and .dockerignore always go). On a terminal the daemon's output is shown live with the
step lines in bold, each finished step's time beside it, and the daemon's ` ---> `
bookkeeping dimmed; off a terminal it is docker's plain text.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from skiff.cli.args import parser
from skiff.cli.context import CliContext
from skiff.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, TextIO


def parse_build_args(items: list[str]) -> dict[str, str | None]:
    """`--build-arg K=V`; a bare `K` takes the value from the environment (as docker)."""
    out: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if sep:
            out[key] = value
        elif key in os.environ:
            out[key] = os.environ[key]
        else:
            out[key] = None
    return out


def parse_labels(items: list[str]) -> dict[str, str]:
    return {k: v for k, _, v in (i.partition("=") for i in items)}


class LiveView:
    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self.started = time.monotonic()
        self.step_started: float | None = None

    def _end_step(self) -> None:
        if self.tty and self.step_started is not None:
            took = time.monotonic() - self.step_started
            self.out.write(f"\x1b[2m     ({took:.1f}s)\x1b[0m\n")
        self.step_started = None

    def text(self, text: str) -> None:
        if not self.tty:
            self.out.write(text)
            self.out.flush()
            return
        for line in text.splitlines(keepends=True):
            if line.startswith("Step "):
                self._end_step()
                self.step_started = time.monotonic()
                self.out.write(f"\x1b[1m{line}\x1b[0m")
            elif line.startswith((" ---> ", "Removing intermediate container")):
                self.out.write(f"\x1b[2m{line}\x1b[0m")
            elif line.startswith("Successfully built"):
                self._end_step()
                took = time.monotonic() - self.started
                self.out.write(
                    f"\x1b[32m{line.rstrip()}\x1b[0m \x1b[2m(total {took:.1f}s)\x1b[0m\n"
                )
            else:
                self.out.write(line)
        self.out.flush()

    def show(self, messages: Iterable[dict[str, Any]]) -> tuple[int, str]:
        image_id = ""
        for message in messages:
            if message.get("error"):
                self._end_step()
                print(message["error"], file=sys.stderr)
                code = (message.get("errorDetail") or {}).get("code")
                return (int(code) if isinstance(code, int) and code > 0 else 1), ""
            if "aux" in message and isinstance(message["aux"], dict):
                image_id = str(message["aux"].get("ID", image_id))
            if "stream" in message:
                self.text(str(message["stream"]))
        return 0, image_id


def run(ctx: CliContext, argv: list[str], prog: str = "build") -> int:
    from skiff.build.dockerignore import context_tar
    from skiff.cli.progress import human_bytes

    p = parser(prog, "Build an image from a Dockerfile")
    p.add_argument("path", metavar="PATH")
    p.add_argument("-t", "--tag", action="append", default=[], help="name:tag for the image")
    p.add_argument(
        "-f", "--file", default="", help="name of the Dockerfile (default PATH/Dockerfile)"
    )
    p.add_argument("--build-arg", action="append", default=[], help="set build-time variables")
    p.add_argument("--label", action="append", default=[], help="set metadata for the image")
    p.add_argument("--target", default="", help="the build stage to build")
    p.add_argument("--no-cache", action="store_true", help="do not use cache")
    p.add_argument("--pull", action="store_true", help="always pull newer base images")
    p.add_argument("-q", "--quiet", action="store_true", help="print the image ID on success")
    p.add_argument("--iidfile", default="", help="write the image ID to the file")
    p.add_argument("--platform", default="", help="platform of the build")
    ns = p.parse_args(argv)
    if ns.path.startswith(("http://", "https://", "git@")) or ns.path == "-":
        raise InvalidArgument("skiff build takes a context folder (URLs and stdin: not yet)")
    if not os.path.isdir(ns.path):
        raise InvalidArgument(f'unable to prepare context: path "{ns.path}" not found')
    dockerfile = _dockerfile_in_context(ns.path, ns.file)
    if ns.iidfile:
        try:
            os.unlink(ns.iidfile)
        except FileNotFoundError:
            pass
    with tempfile.TemporaryFile(prefix="skiff-context-") as context:
        context_tar(ns.path, dockerfile, context)
        size = context.tell()
        context.seek(0)
        if not ns.quiet:
            print(f"Sending build context to skiffd  {human_bytes(size)}", flush=True)
        messages = ctx.client().build(
            context,
            tags=ns.tag,
            dockerfile=dockerfile,
            build_args=parse_build_args(ns.build_arg),
            labels=parse_labels(ns.label),
            target=ns.target,
            no_cache=ns.no_cache,
            pull=ns.pull,
            quiet=ns.quiet,
            platform=ns.platform,
        )
        view = LiveView(sys.stdout, sys.stdout.isatty() and not ns.quiet)
        code, image_id = view.show(messages)
    if code == 0 and ns.iidfile and image_id:
        with open(ns.iidfile, "w") as f:
            f.write(image_id)
    return code


def _dockerfile_in_context(path: str, name: str) -> str:
    """The Dockerfile's path inside the context (docker requires -f to be inside it)."""
    if not name:
        return "Dockerfile"
    full = os.path.abspath(name if os.path.isabs(name) else os.path.join(os.getcwd(), name))
    if not os.path.exists(full):
        full = os.path.abspath(os.path.join(path, name))
    rel = os.path.relpath(full, os.path.abspath(path))
    if rel.startswith(".."):
        raise InvalidArgument(f"the Dockerfile ({name}) must be within the build context")
    return rel
