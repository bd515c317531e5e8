"""The runnable part of an OCI image config (`config` in config.md), as pure data.

Re-exported by skiff.services.images, whose `Image.config` it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImageConfig:
    """The `config` object of an OCI image config (the Docker `Config` of inspect).

    Field names are Python's; the API renders them as Docker's CamelCase
    (`Env`, `Cmd`, `Entrypoint`, `WorkingDir`, ...). `None` means "not set" where
    Docker distinguishes it from empty (Cmd, Entrypoint, Healthcheck).
    """

    user: str = ""
    exposed_ports: dict[str, dict[str, object]] = field(default_factory=dict)  # "80/tcp": {}
    env: list[str] = field(default_factory=list)  # "KEY=value"
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    volumes: dict[str, dict[str, object]] = field(default_factory=dict)  # "/data": {}
    working_dir: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    on_build: list[str] = field(default_factory=list)
    healthcheck: dict[str, object] | None = None  # Docker's Healthcheck object, as stored
    shell: list[str] | None = None
    args_escaped: bool = False
