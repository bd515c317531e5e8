"""A container's bundle folder: Docker's create body merged with the image's defaults,
the managed files (hostname, hosts, resolv.conf) and config.json.

    merge_config(body, image_config)  -> (Config, HostConfig, path, args)   Docker objects
    write_files(dir, hostname, network_mode) -> {"/etc/hostname": path, ...}
    write_config(dir, spec)           config.json, atomically
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from skiff.errors import InvalidArgument
from skiff.oci.image import ImageConfig
from skiff.services.container_types import DEFAULT_SHM_SIZE

HOSTS = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def merge_env(image_env: list[str], env: list[str]) -> list[str]:
    """The image's env, then the container's; a key set twice keeps its last value."""
    merged: dict[str, str] = {}
    for item in [*image_env, *env]:
        key = item.partition("=")[0]
        merged[key] = item
    return list(merged.values())


def merge_config(
    body: dict[str, Any], image: ImageConfig
) -> tuple[dict[str, Any], dict[str, Any], str, list[str]]:
    """Docker's create body (Config fields + HostConfig) and the image's config ->
    (Config, HostConfig, Path, Args) as `inspect` shows them."""
    config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    host_config: dict[str, Any] = dict(body.get("HostConfig") or {})
    entrypoint = config.get("Entrypoint")
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint]
    cmd = config.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    if entrypoint is None:
        entrypoint = image.entrypoint
        if not cmd:
            cmd = image.cmd
    elif entrypoint == [""]:
        entrypoint = None  # --entrypoint "": the image's is dropped
    # With an entrypoint from the request, the image's Cmd does not apply (Docker's rule).
    argv = [*(entrypoint or []), *(cmd or [])]
    if not argv:
        raise InvalidArgument("no command specified")
    # No PATH added here when the image has none (an imported one): dockerd shows
    # Config.Env as the image's and the request's; the process gets PATH (spec.py).
    config["Env"] = merge_env(image.env or [], list(config.get("Env") or []))
    config["Cmd"] = cmd
    config["Entrypoint"] = entrypoint
    config["WorkingDir"] = config.get("WorkingDir") or image.working_dir or ""
    config["User"] = config.get("User") or image.user or ""
    config["Labels"] = {**image.labels, **(config.get("Labels") or {})}
    if not config.get("StopSignal") and image.stop_signal:
        config["StopSignal"] = image.stop_signal
    if image.volumes and not config.get("Volumes"):
        config["Volumes"] = dict(image.volumes)
    if image.exposed_ports:
        config["ExposedPorts"] = {**image.exposed_ports, **(config.get("ExposedPorts") or {})}
    for key in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce"):
        config[key] = bool(config.get(key))
    config.setdefault("Domainname", "")
    config.setdefault("OnBuild", None)
    host_config.setdefault("NetworkMode", "default")
    # dockerd fills in its default IPC mode at create, and inspect shows it.
    host_config["IpcMode"] = host_config.get("IpcMode") or "private"
    host_config["ShmSize"] = host_config.get("ShmSize") or DEFAULT_SHM_SIZE
    host_config.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    host_config.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    return config, host_config, argv[0], argv[1:]


def _resolv_conf() -> str:
    """The host's resolv.conf without loopback nameservers (unreachable from a
    container's own network namespace); Google's DNS if none is left, as Docker."""
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    kept = [ln for ln in lines if not re.match(r"^\s*nameserver\s+(127\.|::1\b)", ln)]
    if not any(ln.strip().startswith("nameserver") for ln in kept):
        kept += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "\n".join(kept) + "\n"


def write_files(directory: str, hostname: str, network_mode: str) -> dict[str, str]:
    """hostname, hosts and resolv.conf in the container's folder, for bind mounts."""
    if network_mode == "host":
        hostname = os.uname().nodename
        try:
            with open("/etc/hosts", encoding="utf-8", errors="replace") as f:
                hosts = f.read()
        except OSError:
            hosts = HOSTS
    else:
        hosts = HOSTS + f"127.0.1.1\t{hostname}\n"
    files = {
        "/etc/hostname": ("hostname", hostname + "\n"),
        "/etc/hosts": ("hosts", hosts),
        "/etc/resolv.conf": ("resolv.conf", _resolv_conf()),
    }
    paths = {}
    for dest, (name, text) in files.items():
        path = os.path.join(directory, name)
        # Not fsynced, as dockerd's are not: a rename keeps them whole against a
        # crash of any process, and a lost one after a power cut is a small file
        # to write again; three fsyncs cost every `create` 2-4 ms.
        _atomic_write(path, text.encode(), sync=False)
        paths[dest] = path
    return paths


def write_config(directory: str, spec: dict[str, Any]) -> None:
    _atomic_write(os.path.join(directory, "config.json"), json.dumps(spec, indent=1).encode())


def _atomic_write(path: str, data: bytes, sync: bool = True) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
