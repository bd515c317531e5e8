from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from skiff.network import dns


def test_name_round_trip_and_compression() -> None:
    raw = dns.encode_name("Web.Example.")
    assert raw == b"\x03Web\x07Example\x00"
    assert dns.decode_name(raw, 0) == ("Web.Example", len(raw))
    # a pointer back to offset 0 after one label
    msg = raw + b"\x03www\xc0\x00"
    assert dns.decode_name(msg, len(raw)) == ("www.Web.Example", len(msg))
    with pytest.raises(dns.DnsFormatError):
        dns.decode_name(b"\xc0\x00", 0)  # a loop
    assert dns.encode_name(".") == b"\x00"


def test_query_and_response_encoding() -> None:
    q = dns.parse_query(dns.build_query("Web", dns.TYPE_A, qid=7))
    assert q.id == 7
    assert q.question == dns.Question("web", dns.TYPE_A)
    resp = dns.build_response(q, addresses=[IPv4Address("10.0.0.2"), IPv4Address("10.0.0.3")])
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", resp[:12])
    assert (qid, qd, an, ns, ar) == (7, 1, 2, 0, 0)
    assert flags & 0x8000
    assert flags & 0x0400
    assert flags & 0x0100
    assert flags & 0xF == 0
    assert resp[12 : 12 + len(q.raw_question)] == q.raw_question
    assert resp.endswith(bytes([10, 0, 0, 3]))
    assert b"\x03Web" in resp  # the asker's letter case is kept
    nx = dns.build_response(q, rcode=dns.RCODE_NXDOMAIN)
    assert nx[3] & 0xF == dns.RCODE_NXDOMAIN


def test_ptr_answer_and_reverse_name() -> None:
    assert dns.reverse_name("2.0.17.172.in-addr.arpa") == IPv4Address("172.17.0.2")
    assert dns.reverse_name("x.in-addr.arpa") is None
    q = dns.parse_query(dns.build_query("2.0.17.172.in-addr.arpa", dns.TYPE_PTR))
    resp = dns.build_response(q, ptr="web.net")
    assert resp.endswith(dns.encode_name("web.net"))


def test_malformed() -> None:
    with pytest.raises(dns.DnsFormatError):
        dns.parse_query(b"\x00\x01")
    with pytest.raises(dns.DnsFormatError):
        dns.parse_query(dns.build_query("x")[:-2])
    assert dns.error_response(b"\x00", dns.RCODE_FORMERR) is None
    err = dns.error_response(b"\x12\x34\x01\x00" + b"\0" * 8, dns.RCODE_FORMERR)
    assert err is not None
    assert err[:2] == b"\x12\x34"
    assert err[3] & 0xF == 1


class Names:
    def lookup(self, sandbox: str, name: str) -> list[IPv4Address] | None:
        if sandbox == "s1" and name == "web":
            return [IPv4Address("10.0.0.2")]
        return None

    def reverse(self, sandbox: str, address: IPv4Address) -> str | None:
        return "web.net" if address == IPv4Address("10.0.0.2") else None


def test_answer_logic() -> None:
    n = Names()
    a = dns.answer(n, "s1", dns.Question("web", dns.TYPE_A))
    assert a == dns.Answer(addresses=(IPv4Address("10.0.0.2"),))
    assert dns.answer(n, "s1", dns.Question("web", dns.TYPE_AAAA)) == dns.Answer()
    assert dns.answer(n, "s2", dns.Question("web", dns.TYPE_A)) is None
    assert dns.answer(n, "s1", dns.Question("2.0.0.10.in-addr.arpa", dns.TYPE_PTR)) == dns.Answer(
        ptr="web.net"
    )


@pytest.fixture
def upstream() -> Iterator[int]:
    """A fake upstream resolver on 127.0.0.1 (udp and tcp, one port) answering 192.0.2.99."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4)
    stop = threading.Event()

    def reply(data: bytes) -> bytes:
        return dns.build_response(dns.parse_query(data), addresses=[IPv4Address("192.0.2.99")])

    def serve() -> None:
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        sel.register(lsock, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in sel.select(0.1):
                if key.fileobj is sock:
                    data, addr = sock.recvfrom(2048)
                    sock.sendto(reply(data), addr)
                else:
                    conn, _ = lsock.accept()
                    with conn:
                        (n,) = struct.unpack("!H", conn.recv(2))
                        out = reply(conn.recv(n))
                        conn.sendall(struct.pack("!H", len(out)) + out)
        sel.close()

    t = threading.Thread(target=serve)
    t.start()
    yield port
    stop.set()
    t.join()
    sock.close()
    lsock.close()


def ask_udp(port: int, name: str, qtype: int = dns.TYPE_A) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(dns.build_query(name, qtype), ("127.0.0.1", port))
        return s.recv(2048)


def ask_tcp(port: int, name: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        q = dns.build_query(name)
        s.sendall(struct.pack("!H", len(q)) + q)
        (n,) = struct.unpack("!H", s.recv(2))
        data = b""
        while len(data) < n:
            data += s.recv(n - len(data))
        return data


def test_server_answers_and_forwards(upstream: int) -> None:
    server = dns.DnsServer(Names(), lambda: [("127.0.0.1", upstream)], timeout=2)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    uport, tport = udp.getsockname()[1], tcp.getsockname()[1]
    server.add_sandbox("s1", udp, tcp)
    try:
        assert ask_udp(uport, "web").endswith(bytes([10, 0, 0, 2]))
        assert ask_udp(uport, "example.org").endswith(bytes([192, 0, 2, 99]))
        assert ask_tcp(tport, "web").endswith(bytes([10, 0, 0, 2]))
        assert ask_tcp(tport, "example.org").endswith(bytes([192, 0, 2, 99]))
        aaaa = ask_udp(uport, "web", dns.TYPE_AAAA)
        assert struct.unpack("!H", aaaa[6:8])[0] == 0
        assert aaaa[3] & 0xF == 0
    finally:
        server.stop()
    assert udp.fileno() == -1
    assert tcp.fileno() == -1


def test_server_servfail_without_upstream() -> None:
    server = dns.DnsServer(Names(), list, timeout=0.5)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    server.add_sandbox("s1", udp, tcp)
    try:
        assert ask_udp(udp.getsockname()[1], "nowhere.")[3] & 0xF == dns.RCODE_SERVFAIL
    finally:
        server.stop()
