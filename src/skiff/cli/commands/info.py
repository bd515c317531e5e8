"""`skiff info`: system-wide information, like `docker info`."""

from __future__ import annotations

from skiff.cli.args import add_format, parser
from skiff.cli.context import CliContext
from skiff.cli.output import bytes_binary, print_formatted
from skiff.version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _lines(info: dict[str, Any]) -> list[str]:
    plugins = info.get("Plugins") or {}
    out = [
        f" Containers: {info.get('Containers', 0)}",
        f"  Running: {info.get('ContainersRunning', 0)}",
        f"  Paused: {info.get('ContainersPaused', 0)}",
        f"  Stopped: {info.get('ContainersStopped', 0)}",
        f" Images: {info.get('Images', 0)}",
        f" Server Version: {info.get('ServerVersion', '')}",
        f" Storage Driver: {info.get('Driver', '')}",
    ]
    out += [f"  {k}: {v}" for k, v in info.get("DriverStatus") or []]
    out += [
        f" Logging Driver: {info.get('LoggingDriver', '')}",
        f" Cgroup Driver: {info.get('CgroupDriver', '')}",
        f" Cgroup Version: {info.get('CgroupVersion', '')}",
        " Plugins:",
        f"  Volume: {' '.join(plugins.get('Volume') or [])}",
        f"  Network: {' '.join(plugins.get('Network') or [])}",
        f"  Log: {' '.join(plugins.get('Log') or [])}",
        f" Runtimes: {' '.join(sorted(info.get('Runtimes') or {}))}",
        f" Default Runtime: {info.get('DefaultRuntime', '')}",
        " Security Options:",
    ]
    out += [f"  {opt.removeprefix('name=')}" for opt in info.get("SecurityOptions") or []]
    out += [
        f" Kernel Version: {info.get('KernelVersion', '')}",
        f" Operating System: {info.get('OperatingSystem', '')}",
        f" OSType: {info.get('OSType', '')}",
        f" Architecture: {info.get('Architecture', '')}",
        f" CPUs: {info.get('NCPU', 0)}",
        f" Total Memory: {bytes_binary(info.get('MemTotal', 0))}",
        f" Name: {info.get('Name', '')}",
        f" ID: {info.get('ID', '')}",
        f" Skiff Root Dir: {info.get('DockerRootDir', '')}",
        f" Debug Mode: {str(info.get('Debug', False)).lower()}",
        f" Live Restore Enabled: {str(info.get('LiveRestoreEnabled', False)).lower()}",
    ]
    return out


def run(ctx: CliContext, argv: list[str]) -> int:
    p = parser("info", "Display system-wide information")
    add_format(p)
    ns = p.parse_args(argv)
    info = ctx.client().info()
    if ns.format:
        data = dict(info)
        data["ClientInfo"] = {"Version": __version__, "Debug": ctx.options.debug}
        print_formatted(ns.format, [data])
        return 0
    print("Client:")
    print(f" Version:    {__version__}")
    print(f" Debug Mode: {str(ctx.options.debug).lower()}")
    print("\nServer:")
    print("\n".join(_lines(info)))
    for warning in info.get("Warnings") or []:
        print(warning)
    return 0
