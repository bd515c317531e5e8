"""The /etc/resolv.conf and /etc/hosts a container gets, as dockerd writes them. Pure.

A container on a user-defined network asks the embedded DNS server (`nameserver
127.0.0.11`, `options ndots:0`); its external servers are the host's. A container on the
default bridge gets the host's resolv.conf with the loopback nameservers removed (they
mean nothing in another network namespace); when none are left, Google's public servers,
as dockerd does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

EMBEDDED_DNS = "127.0.0.11"
DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")


@dataclass
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def parse_resolv_conf(text: str) -> ResolvConf:
    conf = ResolvConf()
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        key, args = words[0], words[1:]
        if key == "nameserver" and args:
            conf.nameservers.append(args[0])
        elif key in ("search", "domain"):
            conf.search = args  # the last one wins, as in resolv.conf(5)
        elif key == "options":
            conf.options.extend(args)
    return conf


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def filter_loopback(nameservers: Iterable[str], ipv6: bool = False) -> list[str]:
    """Drop loopback servers (and IPv6 ones unless the container has IPv6), as dockerd."""
    kept = []
    for ns in nameservers:
        if is_loopback(ns):
            continue
        if not ipv6 and ":" in ns:
            continue
        kept.append(ns)
    return kept


def _render(conf: ResolvConf) -> str:
    lines = [f"nameserver {ns}" for ns in conf.nameservers]
    if conf.search:
        lines.append("search " + " ".join(conf.search))
    if conf.options:
        lines.append("options " + " ".join(conf.options))
    return "\n".join(lines) + "\n"


def container_resolv_conf(
    host_text: str,
    *,
    embedded_dns: bool,
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
) -> str:
    """The resolv.conf for a container: `host_text` is the host's /etc/resolv.conf."""
    host = parse_resolv_conf(host_text)
    search = list(dns_search) or host.search
    options = list(dns_options) or list(host.options)
    if embedded_dns:
        if not any(o.startswith("ndots:") for o in options):
            options.append("ndots:0")
        external = list(dns) or host.nameservers
        text = _render(ResolvConf([EMBEDDED_DNS], search, options))
        return text + f"\n# ExtServers: [{' '.join(external)}]\n"
    nameservers = list(dns) or filter_loopback(host.nameservers) or list(DEFAULT_NAMESERVERS)
    return _render(ResolvConf(nameservers, search, options))


def external_servers(host_text: str, dns: Sequence[str] = ()) -> list[str]:
    """Where the embedded DNS forwards: loopback servers work, it asks from the host."""
    return list(dns) or parse_resolv_conf(host_text).nameservers or list(DEFAULT_NAMESERVERS)


HOSTS_HEADER = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def container_hosts(
    hostname: str,
    addresses: Sequence[str] = (),
    extra_hosts: Sequence[tuple[str, str]] = (),
    domainname: str = "",
) -> str:
    """/etc/hosts as dockerd writes it: defaults, `--add-host` entries, then the container."""
    lines = [HOSTS_HEADER.rstrip("\n")]
    lines += [f"{ip}\t{name}" for name, ip in extra_hosts]
    names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    lines += [f"{ip}\t{names}" for ip in addresses]
    return "\n".join(lines) + "\n"
