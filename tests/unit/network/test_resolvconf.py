from __future__ import annotations

from skiff.network import resolvconf

HOST = """# generated
nameserver 127.0.0.53
nameserver 10.0.0.2
nameserver ::1
nameserver 2001:db8::1
search example.com corp
options edns0 trust-ad
"""


def test_default_bridge_filters_loopback_and_ipv6() -> None:
    text = resolvconf.container_resolv_conf(HOST, embedded_dns=False)
    assert text == "nameserver 10.0.0.2\nsearch example.com corp\noptions edns0 trust-ad\n"


def test_only_loopback_falls_back_to_google() -> None:
    text = resolvconf.container_resolv_conf("nameserver 127.0.0.1\n", embedded_dns=False)
    assert text.splitlines()[:2] == ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]


def test_user_network_uses_embedded_dns() -> None:
    text = resolvconf.container_resolv_conf(HOST, embedded_dns=True)
    lines = text.splitlines()
    assert lines[0] == "nameserver 127.0.0.11"
    assert "options edns0 trust-ad ndots:0" in lines
    assert "# ExtServers: [127.0.0.53 10.0.0.2 ::1 2001:db8::1]" in lines


def test_overrides() -> None:
    text = resolvconf.container_resolv_conf(
        HOST, embedded_dns=False, dns=["9.9.9.9"], dns_search=["x"], dns_options=["ndots:2"]
    )
    assert text == "nameserver 9.9.9.9\nsearch x\noptions ndots:2\n"


def test_external_servers_keep_loopback() -> None:
    assert resolvconf.external_servers(HOST)[0] == "127.0.0.53"
    assert resolvconf.external_servers("") == ["8.8.8.8", "8.8.4.4"]


def test_hosts() -> None:
    text = resolvconf.container_hosts("abc123", ["172.17.0.2"], [("db", "10.0.0.9")])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert lines[-2:] == ["10.0.0.9\tdb", "172.17.0.2\tabc123"]
