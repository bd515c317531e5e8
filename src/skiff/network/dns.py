"""The embedded DNS server (dockerd's 127.0.0.11) and the bit of RFC 1035 it needs.

How a query travels:

    container process ──udp/tcp 127.0.0.11:53──▶ nat OUTPUT (container netns, SKIFF-DNS chain)
        DNAT ──▶ 127.0.0.11:<port> ──▶ a socket skiffd created *inside* the container's netns
        ──▶ DnsServer (one thread, one event loop, every sandbox's sockets)
              name of a container/alias on a network of that sandbox ──▶ A record (TTL 600)
              anything else ──▶ forwarded from the host's netns to the host's resolvers

A socket belongs to the network namespace it was created in for its whole life, so a
daemon on the host can listen in each container's netns without a process there: the
same trick dockerd uses, and it keeps the container's port 53 free for its own servers
(the DNAT goes to a random port). Forwarding from the host netns means loopback resolvers
of the host (systemd-resolved, dnsmasq) keep working for containers.

The codec is hand-written (about 100 lines): the server needs the question of a query,
A/PTR answers and error codes, and forwards everything else byte for byte, so a general
DNS library would add a dependency for little.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Protocol, cast

log = logging.getLogger(__name__)

TYPE_A = 1
TYPE_PTR = 12
TYPE_AAAA = 28
CLASS_IN = 1
RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
TTL = 600

_HEADER = struct.Struct("!HHHHHH")


class DnsFormatError(ValueError):
    pass


@dataclass(frozen=True)
class Question:
    name: str  # lower case, no trailing dot
    qtype: int
    qclass: int = CLASS_IN


@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    question: Question
    raw_question: bytes  # echoed in the answer as it came (keeps the asker's letter case)


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split(".") if name.strip(".") else []:
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if not 0 < len(raw) < 64:
            raise DnsFormatError(f"bad label in {name!r}")
        out += bytes([len(raw)]) + raw
    return bytes(out + b"\0")


def decode_name(msg: bytes, offset: int) -> tuple[str, int]:
    """The name at `offset` (following compression pointers) and the offset after it."""
    labels: list[str] = []
    end = -1
    for _ in range(128):  # bounds pointer loops
        if offset >= len(msg):
            raise DnsFormatError("name runs past the message")
        length = msg[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(msg):
                raise DnsFormatError("truncated pointer")
            if end < 0:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | msg[offset + 1]
            continue
        if length == 0:
            return ".".join(labels), (end if end >= 0 else offset + 1)
        labels.append(msg[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    raise DnsFormatError("compression loop")


def parse_query(msg: bytes) -> Query:
    if len(msg) < _HEADER.size:
        raise DnsFormatError("short message")
    qid, flags, qdcount, _, _, _ = _HEADER.unpack_from(msg)
    if flags & 0x8000 or qdcount != 1:
        raise DnsFormatError("not a query with one question")
    name, offset = decode_name(msg, _HEADER.size)
    if offset + 4 > len(msg):
        raise DnsFormatError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", msg, offset)
    return Query(qid, flags, Question(name.lower(), qtype, qclass), msg[_HEADER.size : offset + 4])


def build_query(name: str, qtype: int = TYPE_A, qid: int = 0x1234) -> bytes:
    """A recursive query, as a stub resolver sends it (for tests and health checks)."""
    return _HEADER.pack(qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, 1)


def build_response(
    query: Query,
    *,
    rcode: int = RCODE_NOERROR,
    addresses: Sequence[IPv4Address] = (),
    ptr: str | None = None,
) -> bytes:
    """An authoritative answer to `query`: A records, one PTR record, or just `rcode`."""
    answers = bytearray()
    pointer = struct.pack("!H", 0xC000 | _HEADER.size)  # the question's name
    for addr in addresses:
        answers += pointer + struct.pack("!HHIH", TYPE_A, CLASS_IN, TTL, 4) + addr.packed
    if ptr is not None:
        target = encode_name(ptr)
        answers += pointer + struct.pack("!HHIH", TYPE_PTR, CLASS_IN, TTL, len(target)) + target
    count = len(addresses) + (ptr is not None)
    # QR, AA, RD copied, RA; opcode copied.
    flags = 0x8000 | 0x0400 | (query.flags & 0x7900) | 0x0080 | rcode
    return _HEADER.pack(query.id, flags, 1, count, 0, 0) + query.raw_question + bytes(answers)


def error_response(msg: bytes, rcode: int) -> bytes | None:
    """An answer carrying only `rcode` for a message we could not use (None: not even that)."""
    if len(msg) < _HEADER.size:
        return None
    qid, flags = struct.unpack_from("!HH", msg)
    return _HEADER.pack(qid, 0x8000 | (flags & 0x7900) | 0x0080 | rcode, 0, 0, 0, 0)


@dataclass(frozen=True)
class Answer:
    rcode: int = RCODE_NOERROR
    addresses: tuple[IPv4Address, ...] = ()
    ptr: str | None = None


def reverse_name(name: str) -> IPv4Address | None:
    """ "2.0.17.172.in-addr.arpa" -> 172.17.0.2."""
    suffix = ".in-addr.arpa"
    if not name.endswith(suffix):
        return None
    parts = name[: -len(suffix)].split(".")
    if len(parts) != 4:
        return None
    try:
        return IPv4Address(".".join(reversed(parts)))
    except ValueError:
        return None


class Names(Protocol):
    """What the server asks the network manager; called from the DNS thread."""

    def lookup(self, sandbox: str, name: str) -> list[IPv4Address] | None:
        """Addresses of a container or alias seen from `sandbox`; None: not a name of ours."""

    def reverse(self, sandbox: str, address: IPv4Address) -> str | None: ...


def answer(names: Names, sandbox: str, q: Question) -> Answer | None:
    """The local answer to a question; None when it must be forwarded."""
    if q.qclass != CLASS_IN:
        return None
    if q.qtype == TYPE_PTR:
        addr = reverse_name(q.name)
        found = names.reverse(sandbox, addr) if addr else None
        return Answer(ptr=found) if found else None
    found_addrs = names.lookup(sandbox, q.name)
    if found_addrs is None:
        return None
    if q.qtype == TYPE_A:
        return Answer(addresses=tuple(found_addrs))
    return Answer()  # a name of ours with no record of that type: NOERROR, no answers


class DnsServer:
    """Serves every sandbox's sockets from one thread with its own event loop."""

    def __init__(
        self,
        names: Names,
        upstreams: Callable[[], Sequence[tuple[str, int]]],
        timeout: float = 2.0,
    ) -> None:
        self.names = names
        self.upstreams = upstreams
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sandboxes: dict[str, list[asyncio.BaseTransport | asyncio.AbstractServer]] = {}

    # -- lifecycle (any thread) --

    def start(self) -> None:
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="skiff-dns", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        for key in list(self._sandboxes):
            self.remove_sandbox(key)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop = self._thread = None

    def _call(self, coro: object) -> object:
        assert self._loop is not None, "DnsServer.start() first"
        fut: Future[object] = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return fut.result()

    def add_sandbox(self, key: str, udp: socket.socket, tcp: socket.socket) -> None:
        """Serve queries arriving on two bound sockets (the TCP one listening already)."""
        self.start()
        self._call(self._add(key, udp, tcp))

    def remove_sandbox(self, key: str) -> None:
        if self._loop is not None and key in self._sandboxes:
            self._call(self._remove(key))

    # -- the loop's side --

    async def _add(self, key: str, udp: socket.socket, tcp: socket.socket) -> None:
        await self._remove(key)
        loop = asyncio.get_running_loop()
        udp.setblocking(False)
        tcp.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self, key), sock=udp
        )
        server = await asyncio.start_server(
            lambda r, w: self._serve_tcp(key, r, w), sock=tcp, backlog=64
        )
        self._sandboxes[key] = [transport, server]

    async def _remove(self, key: str) -> None:
        for item in self._sandboxes.pop(key, []):
            item.close()
            if isinstance(item, asyncio.AbstractServer):
                await item.wait_closed()

    async def resolve(self, key: str, msg: bytes, tcp: bool = False) -> bytes | None:
        try:
            query = parse_query(msg)
        except DnsFormatError:
            return error_response(msg, RCODE_FORMERR)
        local = answer(self.names, key, query.question)
        if local is not None:
            return build_response(
                query, rcode=local.rcode, addresses=local.addresses, ptr=local.ptr
            )
        for host, port in self.upstreams():
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                reply = await asyncio.wait_for(self._forward(host, port, msg, tcp), self.timeout)
                if reply:
                    return reply
        return build_response(query, rcode=RCODE_SERVFAIL)

    async def _forward(self, host: str, port: int, msg: bytes, tcp: bool) -> bytes:
        if tcp:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(struct.pack("!H", len(msg)) + msg)
                await writer.drain()
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                return await reader.readexactly(length)
            finally:
                writer.close()
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, msg)
            while True:
                reply = await loop.sock_recv(sock, 65535)
                if reply[:2] == msg[:2]:  # the same id: not a stray datagram
                    return reply

    async def _serve_tcp(
        self, key: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = await self.resolve(key, await reader.readexactly(length), tcp=True)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer, key: str) -> None:
        self.server = server
        self.key = key
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            reply = await self.server.resolve(self.key, data)
        except Exception:
            log.exception("dns: answering a query failed")
            reply = error_response(data, RCODE_SERVFAIL)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)
