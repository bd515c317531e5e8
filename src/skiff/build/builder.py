"""The classic builder: a parsed Dockerfile + a context folder -> an image, over an Executor.

    parse (all errors first) -> pick the stages the target needs -> for each stage:
      FROM: base image (scratch, an earlier stage, or resolve/pull) + its ONBUILD triggers
      each instruction: change the run config; probe the cache; else run/copy and commit

Every step commits an image whose config records the step as dockerd 20.10 does:
`history[].created_by` is the command (`|1 X=y /bin/sh -c ...` for a RUN with build
args) or a `#(nop)` comment (`/bin/sh -c #(nop)  CMD ["sh"]`, with two spaces;
`#(nop) COPY file:<hash> in /dest ` with one), metadata-only steps are `empty_layer`,
`container_config` is the run config with that command as Cmd. The cache key is the
parent image id + that container config (so the command, the build args in effect and
the content hash of COPY sources), as dockerd's image cache compares them; the cache
itself is a small store of key -> image id that survives the build.

Output goes to `emit` as Docker's JSON messages ({"stream": ...}, {"aux": ...});
failures raise BuildError (its `code` is the failing RUN's exit status).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from skiff.build import copier, sources
from skiff.build.dockerfile import Dockerfile, Instruction, Stage, format_duration, parse
from skiff.build.executor import Container, Executor, RunSpec
from skiff.build.shell import Lexer
from skiff.build.sources import Context, FolderTree
from skiff.errors import InvalidArgument, SkiffError
from skiff.version import __version__

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]
# Usable without an ARG line and kept out of the cache key and history (as Docker).
BUILTIN_ARGS = frozenset(
    {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy"}
    | {"NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
)
Emit = Callable[[dict[str, Any]], None]


class BuildError(SkiffError):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    quiet: bool = False
    remove: bool = True
    force_remove: bool = False
    platform: str = ""


# --- the cache ------------------------------------------------------------------------------


class BuildCache(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, image_id: str) -> None: ...

    def prune(self) -> list[str]: ...  # the image ids it dropped


class MemoryCache:
    def __init__(self) -> None:
        self.entries: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def put(self, key: str, image_id: str) -> None:
        self.entries[key] = image_id

    def prune(self) -> list[str]:
        ids = sorted(set(self.entries.values()))
        self.entries.clear()
        return ids


# --- the run config (Docker's container.Config of a step) -----------------------------------


@dataclass
class RunConfig:
    user: str = ""
    exposed_ports: dict[str, dict[str, Any]] = field(default_factory=dict)
    env: list[str] = field(default_factory=list)
    cmd: list[str] | None = None
    healthcheck: dict[str, Any] | None = None
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    working_dir: str = ""
    entrypoint: list[str] | None = None
    on_build: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    shell: list[str] | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None) -> RunConfig:
        o = dict(obj or {})
        return cls(
            user=o.get("User") or "",
            exposed_ports=dict(o.get("ExposedPorts") or {}),
            env=list(o.get("Env") or []),
            cmd=list(o["Cmd"]) if o.get("Cmd") is not None else None,
            healthcheck=dict(o["Healthcheck"]) if o.get("Healthcheck") else None,
            volumes=dict(o.get("Volumes") or {}),
            working_dir=o.get("WorkingDir") or "",
            entrypoint=list(o["Entrypoint"]) if o.get("Entrypoint") is not None else None,
            on_build=list(o.get("OnBuild") or []),
            labels=dict(o.get("Labels") or {}),
            stop_signal=o.get("StopSignal") or "",
            shell=list(o["Shell"]) if o.get("Shell") else None,
        )

    def to_json(self, image: str, hostname: str = "") -> dict[str, Any]:
        """In the field order and omitempty rules of Docker's container.Config."""
        out: dict[str, Any] = {
            "Hostname": hostname,
            "Domainname": "",
            "User": self.user,
            "AttachStdin": False,
            "AttachStdout": False,
            "AttachStderr": False,
        }
        if self.exposed_ports:
            out["ExposedPorts"] = dict(sorted(self.exposed_ports.items()))
        out.update({"Tty": False, "OpenStdin": False, "StdinOnce": False})
        out["Env"] = list(self.env) or None
        out["Cmd"] = list(self.cmd) if self.cmd is not None else None
        if self.healthcheck is not None:
            out["Healthcheck"] = dict(self.healthcheck)
        out["Image"] = image
        out["Volumes"] = dict(sorted(self.volumes.items())) or None
        out["WorkingDir"] = self.working_dir
        out["Entrypoint"] = list(self.entrypoint) if self.entrypoint is not None else None
        out["OnBuild"] = list(self.on_build) or None
        out["Labels"] = dict(self.labels) or None
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.shell is not None:
            out["Shell"] = list(self.shell)
        return out

    def get_env(self, key: str) -> str | None:
        for item in self.env:
            k, _, v = item.partition("=")
            if k == key:
                return v
        return None

    def set_env(self, key: str, value: str) -> None:
        entry = f"{key}={value}"
        for i, item in enumerate(self.env):
            if item.partition("=")[0] == key:
                self.env[i] = entry
                return
        self.env.append(entry)


def go_quote_list(items: list[str] | None) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items or []) + "]"


def _go_quote_int(n: int) -> str:
    if 32 <= n < 127 and chr(n) not in "'\\":
        return f"'{chr(n)}'"
    return f"'\\x{n:02x}'" if n < 256 else f"'\\u{n:04x}'"


def _healthcheck_comment(h: Mapping[str, Any]) -> str:
    durations = " ".join(
        f'"{format_duration(int(h.get(k, 0)))}"' for k in ("Interval", "Timeout", "StartPeriod")
    )
    test = go_quote_list(list(h.get("Test") or []))
    return f"HEALTHCHECK &{{{test} {durations} {_go_quote_int(int(h.get('Retries', 0)))}}}"


def _now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


# --- the build ------------------------------------------------------------------------------


@dataclass
class _State:
    """The image a stage has built so far."""

    image_id: str
    image: dict[str, Any]  # its config JSON
    config: RunConfig
    args: dict[str, str | None] = field(default_factory=dict)  # declared ARGs in scope
    cmd_set: bool = False


class Builder:
    def __init__(self, executor: Executor, cache: BuildCache) -> None:
        self.executor = executor
        self.cache = cache

    def build(
        self,
        dockerfile_text: str,
        context: str | Context,
        options: BuildOptions,
        emit: Emit,
    ) -> str:
        """`context`: a folder, or an index of the client's tar (build/context.py)."""
        df = parse(dockerfile_text)  # every syntax error before any step runs
        tree = FolderTree(context) if isinstance(context, str) else context
        return _Build(self, df, tree, options, emit).run()


class _Build:
    def __init__(
        self, b: Builder, df: Dockerfile, context: Context, opts: BuildOptions, emit: Emit
    ) -> None:
        self.ex = b.executor
        self.cache = b.cache
        self.df = df
        self.context = context
        self.opts = opts
        self._emit = emit
        self.lexer = Lexer(df.directives.escape)
        self.stage_images: dict[int, str] = {}
        self.used_args: set[str] = set()
        self.meta: dict[str, str | None] = {}
        self.step = 0
        self.total = 0
        self.quiet_buffer: list[str] = []

    def out(self, text: str) -> None:
        if self.opts.quiet:
            self.quiet_buffer.append(text)
        else:
            self._emit({"stream": text})

    # -- planning ----------------------------------------------------------------------

    def _target(self) -> int:
        if not self.df.stages:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        if not self.opts.target:
            return len(self.df.stages) - 1
        for stage in self.df.stages:
            if stage.name == self.opts.target.lower():
                return stage.index
        raise BuildError(f"failed to reach build target {self.opts.target} in Dockerfile")

    def _needed(self, target: int) -> list[int]:
        needed = {target}
        for index in range(target, -1, -1):
            if index not in needed:
                continue
            stage = self.df.stages[index]
            refs = [stage.base]
            refs += [i.flags["from"] for i in stage.instructions if "from" in i.flags]
            for ref in refs:
                dep = self._stage_ref(ref, index)
                if dep is not None:
                    needed.add(dep)
        return sorted(needed)

    def _stage_ref(self, ref: str, before: int) -> int | None:
        lowered = ref.lower()
        for stage in self.df.stages[:before]:
            if stage.name and stage.name == lowered:
                return stage.index
        if ref.isdigit() and int(ref) < before:
            return int(ref)
        return None

    # -- running -----------------------------------------------------------------------

    def run(self) -> str:
        target = self._target()
        stages = self._needed(target)
        self.total = len(self.df.meta_args) + sum(
            1 + len(self.df.stages[i].instructions) for i in stages
        )
        for arg in self.df.meta_args:
            self._step(arg)
            env = self._meta_env()
            for name, default in arg.pairs:
                value = self.lexer.process_word(default, env) if default is not None else None
                if name in self.opts.build_args:
                    value = self.opts.build_args[name]
                    self.used_args.add(name)
                self.meta[name] = value
        state: _State | None = None
        for index in stages:
            state = self._stage(self.df.stages[index])
            self.stage_images[index] = state.image_id
        assert state is not None
        final = state
        if self.opts.labels:
            final.config.labels.update(self.opts.labels)
            final = self._commit_nop(
                final,
                "LABEL " + " ".join(f"{k}={v}" for k, v in self.opts.labels.items()),
            )
        unused = sorted(
            k for k in self.opts.build_args if k not in self.used_args and k not in BUILTIN_ARGS
        )
        if unused:
            self.out(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        if not final.image_id:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        self._emit({"aux": {"ID": final.image_id}})
        if self.opts.quiet:
            self._emit({"stream": final.image_id + "\n"})
        else:
            self.out(f"Successfully built {_short(final.image_id)}\n")
        for tag in self.opts.tags:
            self.ex.tag(final.image_id, tag)
            if not self.opts.quiet:
                self.out(f"Successfully tagged {tag}\n")
        return final.image_id

    def _meta_env(self) -> dict[str, str]:
        return {k: v for k, v in self.meta.items() if v is not None}

    def _step(self, inst: Instruction | Stage) -> None:
        self.step += 1
        self.out(f"Step {self.step}/{self.total} : {inst.original}\n")

    def _stage(self, stage: Stage) -> _State:
        self._step(stage)
        state = self._from(stage)
        self.out(f" ---> {_short(state.image_id)}\n" if state.image_id else "")
        triggers = list(state.config.on_build)
        if triggers:
            state.config.on_build = []
            word = "trigger" if len(triggers) == 1 else "triggers"
            self.out(f"# Executing {len(triggers)} build {word}\n")
            for text in triggers:
                trigger_df = parse(f"FROM scratch\n{text}\n")
                for inst in trigger_df.stages[0].instructions:
                    state = self._dispatch(state, inst)
        for inst in stage.instructions:
            self._step(inst)
            state = self._dispatch(state, inst)
        return state

    def _from(self, stage: Stage) -> _State:
        base = self.lexer.process_word(stage.base, self._meta_env())
        if not base:
            raise BuildError(f"base name ({stage.base}) should not be blank")
        platform = self.lexer.process_word(stage.platform, self._meta_env()) or self.opts.platform
        dep = self._stage_ref(base, stage.index)
        if base.lower() == "scratch":
            image_id, image = "", _scratch_image()
        elif dep is not None:
            image_id = self.stage_images[dep]
            image = self.ex.image_config(image_id)
        else:
            image_id = self.ex.resolve_image(base, pull=self.opts.pull, platform=platform)
            image = self.ex.image_config(image_id)
        config = RunConfig.from_json(image.get("config"))
        if not config.env:
            config.env = [f"PATH={DEFAULT_PATH}"]
        # meta ARGs are not in scope in the stage until an ARG line names them again
        return _State(image_id, image, config)

    # -- the environment of a step -----------------------------------------------------

    def _args_in_effect(self, state: _State) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in state.args.items():
            if value is not None:
                out[name] = value
        for name in BUILTIN_ARGS:
            value = self.opts.build_args.get(name)
            if value is not None:
                out[name] = value
        return out

    def _expand_env(self, state: _State) -> dict[str, str]:
        env = self._args_in_effect(state)
        for item in state.config.env:
            k, _, v = item.partition("=")
            env[k] = v  # ENV wins over ARG
        return env

    def _word(self, state: _State, text: str) -> str:
        try:
            return self.lexer.process_word(text, self._expand_env(state))
        except InvalidArgument as e:
            raise BuildError(str(e)) from None

    def _shell(self, state: _State) -> list[str]:
        return list(state.config.shell or DEFAULT_SHELL)

    # -- dispatch ----------------------------------------------------------------------

    def _dispatch(self, state: _State, inst: Instruction) -> _State:
        handler = getattr(self, "_do_" + inst.kind.lower())
        try:
            result: _State = handler(state, inst)
        except BuildError:
            raise
        except InvalidArgument as e:  # a bad COPY source, chown, ...: the build's failure
            raise BuildError(str(e)) from None
        return result

    def _do_env(self, state: _State, inst: Instruction) -> _State:
        parts = []
        for key, raw in inst.pairs:
            name = self._word(state, key)
            value = self._word(state, raw or "")
            if not name:
                raise BuildError("ENV names can not be blank")
            state.config.set_env(name, value)
            parts.append(f"{name}={value}")
        return self._commit_nop(state, "ENV " + " ".join(parts))

    def _do_label(self, state: _State, inst: Instruction) -> _State:
        parts = []
        for key, raw in inst.pairs:
            name = self._word(state, key)
            value = self._word(state, raw or "")
            state.config.labels[name] = value
            parts.append(f"{name}={value}")
        return self._commit_nop(state, "LABEL " + " ".join(parts))

    def _do_arg(self, state: _State, inst: Instruction) -> _State:
        parts = []
        for name, default in inst.pairs:
            value = self._word(state, default) if default is not None else None
            shown = f"{name}={value}" if value is not None else name
            if value is None and name in self.meta:
                value = self.meta[name]
            if name in self.opts.build_args:
                value = self.opts.build_args[name]
                self.used_args.add(name)
            state.args[name] = value
            parts.append(shown)
        return self._commit_nop(state, "ARG " + " ".join(parts))

    def _do_maintainer(self, state: _State, inst: Instruction) -> _State:
        state.image = {**state.image, "author": inst.args[0]}
        return self._commit_nop(state, "MAINTAINER " + inst.args[0])

    def _do_user(self, state: _State, inst: Instruction) -> _State:
        state.config.user = self._word(state, inst.args[0])
        return self._commit_nop(state, "USER " + state.config.user)

    def _do_stopsignal(self, state: _State, inst: Instruction) -> _State:
        sig = self._word(state, inst.args[0])
        _check_signal(sig)
        state.config.stop_signal = sig
        return self._commit_nop(state, "STOPSIGNAL " + sig)

    def _do_expose(self, state: _State, inst: Instruction) -> _State:
        env = self._expand_env(state)
        ports: list[str] = []
        for raw in inst.args:
            try:
                ports.extend(self.lexer.process_words(raw, env))
            except InvalidArgument as e:
                raise BuildError(str(e)) from None
        for port in ports:
            for key in _port_keys(port):
                state.config.exposed_ports[key] = {}
        return self._commit_nop(state, "EXPOSE " + " ".join(sorted(ports)))

    def _do_volume(self, state: _State, inst: Instruction) -> _State:
        volumes = [self._word(state, v) for v in inst.args]
        for v in volumes:
            if not v.strip():
                raise BuildError("VOLUME specified can not be an empty string")
            state.config.volumes[v] = {}
        return self._commit_nop(state, f"VOLUME [{' '.join(volumes)}]")

    def _do_healthcheck(self, state: _State, inst: Instruction) -> _State:
        assert inst.healthcheck is not None
        state.config.healthcheck = dict(inst.healthcheck)
        return self._commit_nop(state, _healthcheck_comment(inst.healthcheck))

    def _do_shell(self, state: _State, inst: Instruction) -> _State:
        state.config.shell = list(inst.args)
        return self._commit_nop(state, f"SHELL [{' '.join(inst.args)}]")

    def _do_onbuild(self, state: _State, inst: Instruction) -> _State:
        state.config.on_build.append(inst.args[0])
        return self._commit_nop(state, "ONBUILD " + inst.args[0])

    def _command(self, state: _State, inst: Instruction) -> list[str]:
        if inst.json:
            return list(inst.args)
        if not inst.args:
            return []
        return [*self._shell(state), inst.args[0]]

    def _do_cmd(self, state: _State, inst: Instruction) -> _State:
        state.config.cmd = self._command(state, inst)
        state.cmd_set = True
        return self._commit_nop(state, "CMD " + go_quote_list(state.config.cmd))

    def _do_entrypoint(self, state: _State, inst: Instruction) -> _State:
        state.config.entrypoint = self._command(state, inst)
        if not state.cmd_set:
            state.config.cmd = None
        return self._commit_nop(state, "ENTRYPOINT " + go_quote_list(state.config.entrypoint))

    def _do_workdir(self, state: _State, inst: Instruction) -> _State:
        value = self._word(state, inst.args[0])
        path = posixpath.normpath(posixpath.join(state.config.working_dir or "/", value))
        state.config.working_dir = path
        comment = "#(nop) WORKDIR " + path
        hit = self._probe(state, [*self._shell(state), comment])
        if hit is not None:
            return hit

        def make(container: Container) -> None:
            copier.mkdir_all(container.rootfs, path)

        return self._commit_with(state, [*self._shell(state), comment], make, show=True)

    def _do_run(self, state: _State, inst: Instruction) -> _State:
        # an empty RUN runs the bare shell, as dockerd does (`/bin/sh -c` exits 2)
        argv = self._command(state, inst) if inst.args else self._shell(state)
        if inst.heredocs and not inst.json:
            argv = [*self._shell(state), _heredoc_script(inst)]
        args = {
            k: v for k, v in self._args_in_effect(state).items()
            if k not in BUILTIN_ARGS and state.config.get_env(k) is None
        }  # fmt: skip
        saved = list(argv)
        if args:
            saved = [f"|{len(args)}", *(f"{k}={args[k]}" for k in sorted(args)), *argv]
        hit = self._probe(state, saved)
        if hit is not None:
            return hit
        env = list(state.config.env) + [f"{k}={v}" for k, v in self._args_in_effect(state).items()]
        spec = RunSpec(argv, env, state.config.user, state.config.working_dir or "/")

        def run(container: Container) -> None:
            code = self.ex.run(container, self._output)
            self._flush_output()
            if code != 0:
                command = " ".join(argv)
                raise BuildError(
                    f"The command '{command}' returned a non-zero code: {code}", code=code
                )

        return self._commit_with(state, saved, run, show=True, spec=spec)

    _pending = b""

    def _output(self, data: bytes) -> None:
        self._pending += data
        while b"\n" in self._pending:
            line, _, self._pending = self._pending.partition(b"\n")
            self.out(line.decode("utf-8", "replace") + "\n")

    def _flush_output(self) -> None:
        if self._pending:
            self.out(self._pending.decode("utf-8", "replace") + "\n")
            self._pending = b""

    def _do_copy(self, state: _State, inst: Instruction) -> _State:
        return self._copy(state, inst, "COPY")

    def _do_add(self, state: _State, inst: Instruction) -> _State:
        return self._copy(state, inst, "ADD")

    def _copy(self, state: _State, inst: Instruction, kind: str) -> _State:
        words = [self._word(state, a) for a in inst.args]
        names, dest = words[:-1], words[-1]
        if not dest.startswith("/"):
            base = state.config.working_dir or "/"
            trailing = dest.endswith("/") or dest in (".", "./")
            dest = posixpath.join(base, dest)
            dest = posixpath.normpath(dest) + ("/" if trailing and dest != "/" else "")
        source_container: Container | None = None
        tmp: str | None = None
        try:
            tree = self.context
            if "from" in inst.flags:
                source_container = self._from_image(self._word(state, inst.flags["from"]))
                tree = FolderTree(source_container.rootfs)
            if inst.heredocs:
                tmp = tempfile.mkdtemp(prefix="skiff-heredoc-")
                names = self._write_heredocs(state, inst, names, tmp)
                tree = FolderTree(tmp)
            found = sources.collect(tree, names, kind)
            digest = sources.source_hash(tree, found)
            chown = self._word(state, inst.flags.get("chown", ""))
            chmod_text = inst.flags.get("chmod", "")
            prefix = f"--chown={chown}" if chown else ""
            prefix += f"--chmod={chmod_text}" if chmod_text else ""
            comment = f"#(nop) {kind} {prefix}{digest} in {words[-1]} "
            cmd = [*self._shell(state), comment]
            hit = self._probe(state, cmd)
            if hit is not None:
                return hit
            chmod = copier.parse_chmod(chmod_text) if chmod_text else None

            def do_copy(container: Container) -> None:
                owner = copier.parse_chown(chown, container.rootfs) if chown else copier.Owner(0, 0)
                # only now, the step missed the cache: put what it reads on disk
                root = tree.materialize(found)
                copier.copy_sources(
                    container.rootfs, root, found, dest, kind=kind, owner=owner, chmod=chmod
                )

            return self._commit_with(state, cmd, do_copy, show=False)
        finally:
            if source_container is not None:
                self.ex.remove(source_container)
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def _write_heredocs(
        self, state: _State, inst: Instruction, names: list[str], folder: str
    ) -> list[str]:
        docs = {f"<<{'-' if d.chomp else ''}{d.name}": d for d in inst.heredocs}
        docs |= {f"<<{'-' if d.chomp else ''}'{d.name}'": d for d in inst.heredocs}
        docs |= {f'<<{"-" if d.chomp else ""}"{d.name}"': d for d in inst.heredocs}
        out = []
        for raw, name in zip(inst.args[:-1], names, strict=True):
            doc = docs.get(raw)
            if doc is None:
                out.append(name)
                continue
            content = self._word(state, doc.content) if doc.expand else doc.content
            with open(os.path.join(folder, doc.name), "w", encoding="utf-8") as f:
                f.write(content)
            os.chmod(os.path.join(folder, doc.name), 0o644)
            out.append(doc.name)
        return out

    def _from_image(self, ref: str) -> Container:
        index = self._stage_ref(ref, len(self.df.stages))
        if index is not None:
            image_id = self.stage_images.get(index)
            if image_id is None:
                raise BuildError(f"stage {ref} was not built")
        else:
            image_id = self.ex.resolve_image(ref, pull=self.opts.pull, platform=self.opts.platform)
        return self.ex.create(image_id)

    # -- committing --------------------------------------------------------------------

    def _new_image(
        self, state: _State, cmd: list[str], container_id: str, empty: bool
    ) -> dict[str, Any]:
        image = {k: v for k, v in state.image.items() if k not in ("id", "parent")}
        created = _now()
        history = list(image.get("history") or [])
        entry: dict[str, Any] = {"created": created}
        if image.get("author"):
            entry["author"] = image["author"]
        entry["created_by"] = " ".join(cmd)
        if empty:
            entry["empty_layer"] = True
        history.append(entry)
        container_config = replace(state.config, cmd=list(cmd))
        image.update(
            {
                "config": state.config.to_json(state.image_id),
                "container": container_id,
                "container_config": container_config.to_json(state.image_id, container_id[:12]),
                "created": created,
                "docker_version": f"skiff-{__version__}",
                "history": history,
            }
        )
        return image

    def _cache_key(self, state: _State, cmd: list[str]) -> str:
        container_config = replace(state.config, cmd=list(cmd))
        doc = {
            "parent": state.image_id,
            "config": container_config.to_json(state.image_id),
            "author": state.image.get("author", ""),
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def _probe(self, state: _State, cmd: list[str]) -> _State | None:
        if self.opts.no_cache:
            return None
        image_id = self.cache.get(self._cache_key(state, cmd))
        if image_id is None or not self.ex.image_exists(image_id):
            return None
        self.out(" ---> Using cache\n")
        self.out(f" ---> {_short(image_id)}\n")
        return self._advance(state, image_id)

    def _advance(self, state: _State, image_id: str) -> _State:
        image = self.ex.image_config(image_id)
        return _State(
            image_id,
            image,
            RunConfig.from_json(image.get("config")),
            dict(state.args),
            state.cmd_set,
        )

    def _commit_nop(self, state: _State, comment: str) -> _State:
        cmd = [*self._shell(state), "#(nop) ", comment]
        hit = self._probe(state, cmd)
        if hit is not None:
            return hit
        container_id = secrets.token_hex(32)
        image = self._new_image(state, cmd, container_id, empty=True)
        image_id = self.ex.commit(None, state.image_id, image)
        return self._finish(state, cmd, image_id)

    def _commit_with(
        self,
        state: _State,
        cmd: list[str],
        work: Callable[[Container], None],
        *,
        show: bool,
        spec: RunSpec | None = None,
    ) -> _State:
        container = self.ex.create(state.image_id, spec)
        try:
            if show:
                self.out(f" ---> Running in {container.id[:12]}\n")
            work(container)
            image = self._new_image(state, cmd, container.id, empty=False)
            image_id = self.ex.commit(container, state.image_id, image)
        finally:
            # Unlike dockerd (which keeps a failed step's container unless --force-rm),
            # a build never leaves a container or mount behind.
            self.ex.remove(container)
        if show:
            self.out(f"Removing intermediate container {container.id[:12]}\n")
        return self._finish(state, cmd, image_id)

    def _finish(self, state: _State, cmd: list[str], image_id: str) -> _State:
        self.cache.put(self._cache_key(state, cmd), image_id)
        self.out(f" ---> {_short(image_id)}\n")
        return self._advance(state, image_id)


def _scratch_image() -> dict[str, Any]:
    from skiff.oci import platform as platforms

    host = platforms.host()
    image: dict[str, Any] = {"architecture": host.architecture, "os": host.os or "linux"}
    if host.variant:
        image["variant"] = host.variant
    image["config"] = {}
    image["rootfs"] = {"type": "layers", "diff_ids": []}
    image["history"] = []
    return image


def _heredoc_script(inst: Instruction) -> str:
    """RUN with heredocs: a lone `<<EOF` runs its content as the script; otherwise the
    shell gets the whole text back, heredocs included (as BuildKit does)."""
    text = inst.args[0]
    doc = inst.heredocs[0]
    if len(inst.heredocs) == 1 and text.strip() in (f"<<{doc.name}", f"<<-{doc.name}"):
        return doc.content
    parts = [text]
    for d in inst.heredocs:
        parts.append(d.content + d.name)
    return "\n".join(parts)


_SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
    "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
    "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
    "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
    "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}  # fmt: skip


def _check_signal(sig: str) -> None:
    if sig.isdigit():
        if 0 < int(sig) <= 64:
            return
    else:
        name = sig.upper().removeprefix("SIG")
        if name in _SIGNALS or name.startswith(("RTMIN", "RTMAX")):
            return
    raise BuildError(f"Invalid signal: {sig}")


def _port_keys(port: str) -> list[str]:
    number, _, proto = port.partition("/")
    proto = proto.lower() or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise BuildError(f"Invalid proto: {proto}")
    lo, _, hi = number.partition("-")
    try:
        start, end = int(lo), int(hi or lo)
    except ValueError:
        raise BuildError(f"Invalid containerPort: {number}") from None
    if not 0 <= start <= end <= 65535:
        raise BuildError(f"Invalid containerPort: {number}")
    return [f"{p}/{proto}" for p in range(start, end + 1)]
