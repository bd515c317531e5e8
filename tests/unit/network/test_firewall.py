from __future__ import annotations

import pytest

from skiff.network import firewall
from skiff.testing.network import FakeIptables


def test_render_rules() -> None:
    c = firewall.Chains("SKT1")
    text = firewall.render(
        c,
        [
            firewall.BridgeRule("skb", "10.1.0.0/24"),
            firewall.BridgeRule("ski", "10.2.0.0/24", True),
        ],
        [
            firewall.Dnat("tcp", "", 8080, "10.1.0.2", 80),
            firewall.Dnat("udp", "127.0.0.1", 53, "10.1.0.3", 53),
        ],
    )
    lines = text.splitlines()
    assert lines[0] == "*filter"
    assert ":SKT1-FORWARD - [0:0]" in lines
    assert "-A SKT1-ISOLATE -i skb ! -o skb -j SKT1-ISOLATE2" in lines
    assert "-A SKT1-ISOLATE2 -o ski -j DROP" in lines
    assert "-A SKT1-FORWARD -i ski ! -o ski -j DROP" in lines
    assert "-A SKT1-PORTS -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80" in lines
    assert (
        "-A SKT1-PORTS -d 127.0.0.1/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.1.0.3:53"
        in lines
    )
    assert "-A SKT1-POSTROUTING -s 10.1.0.0/24 ! -o skb -j MASQUERADE" in lines
    assert "-A SKT1-POSTROUTING -s 10.2.0.0/24 ! -o ski -j MASQUERADE" not in lines  # internal
    assert "-A SKT1-POSTROUTING -s 127.0.0.0/8 -o skb -j MASQUERADE" in lines
    # never a built-in chain's policy, never a flush of anything but skiff's chains
    assert not [line for line in lines if line.startswith(":") and not line.startswith(":SKT1-")]
    assert not [line for line in lines if line.startswith(("-F", "-P"))]


def test_chain_prefix_is_checked() -> None:
    with pytest.raises(ValueError, match="bad chain prefix"):
        firewall.Chains("x y")


def test_apply_adds_jumps_once_and_remove_deletes_them() -> None:
    ipt = FakeIptables("SKT2")
    ipt.apply([], [])
    ipt.apply([], [])
    inserts = [c for c in ipt.commands if "-I" in c]
    assert len(inserts) == 4
    assert ["iptables", "-w", "-t", "filter", "-I", "FORWARD", "1", "-j", "SKT2-FORWARD"] in inserts
    ipt.commands.clear()
    ipt.remove()
    assert [c for c in ipt.commands if "-D" in c]


def test_container_dns_rules() -> None:
    text = firewall.render_container_dns(40001, 40002, add_jump=True)
    assert (
        "-A SKIFF-DNS -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:40001"
        in text
    )
    assert "-A OUTPUT -d 127.0.0.11/32 -j SKIFF-DNS" in text
    assert "OUTPUT" not in firewall.render_container_dns(1, 2, add_jump=False)
