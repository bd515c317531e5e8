"""HTTP for the registry client: pooled keep-alive connections, redirects, TLS policy.

Why http.client in threads rather than aiohttp: everything a pull touches besides
the socket is synchronous (the content store's writers, the snapshotter, the image
metadata) and CPU-bound work there (sha256, gunzip, file writes) releases the GIL,
so a few threads give real parallelism for hashing and unpacking, where an event loop
would run it all on one core or hand it to threads anyway. The services are
synchronous too (the API runs them in a worker thread).

Insecure registries follow dockerd: plain HTTP (or TLS without verification) only for
registries named insecure and for loopback addresses (127.0.0.0/8, ::1, localhost).
For those, HTTPS is tried first and plain HTTP is the fallback, remembered per host.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urljoin, urlsplit

from skiff.distribution.errors import RegistryError, RegistryUnavailable

if TYPE_CHECKING:
    from types import TracebackType

DOCKER_HUB = "docker.io"
DOCKER_HUB_REGISTRY = "registry-1.docker.io"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_BLOCK = 1 << 20


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


Body = bytes | Readable | Iterable[bytes] | None


def registry_host(domain: str) -> str:
    """The host to talk to for a reference's domain: Docker Hub's API lives elsewhere."""
    return DOCKER_HUB_REGISTRY if domain in (DOCKER_HUB, "index.docker.io") else domain


def is_loopback(host: str) -> bool:
    name = _hostname(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _hostname(host: str) -> str:
    """`127.0.0.1:5000` -> `127.0.0.1`; `[::1]:5000` -> `::1`."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


class Response:
    """One HTTP response; read it whole (or close it) before the next request on its
    connection. Closing after a complete read returns the connection to the pool."""

    def __init__(
        self,
        transport: Transport,
        key: tuple[str, str],
        conn: http.client.HTTPConnection,
        raw: http.client.HTTPResponse,
        url: str,
    ) -> None:
        self._transport = transport
        self._key = key
        self._conn: http.client.HTTPConnection | None = conn
        self.raw = raw
        self.url = url
        self.status = raw.status
        self.reason = raw.reason
        self.headers = raw.headers

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    @property
    def length(self) -> int | None:
        value = self.headers.get("Content-Length")
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def read(self, limit: int = -1) -> bytes:
        try:
            data = self.raw.read() if limit < 0 else self.raw.read(limit)
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise RegistryUnavailable(f"reading from {self.url}: {_why(e)}") from e
        return data

    def readinto(self, buf: memoryview) -> int:
        try:
            return self.raw.readinto(buf)
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise RegistryUnavailable(f"reading from {self.url}: {_why(e)}") from e

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self.raw.isclosed() and not self.raw.will_close:
            self._transport._release(self._key, conn)
        else:
            self.raw.close()
            conn.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Transport:
    """Connections by (scheme, host); thread-safe. `insecure` holds registry hosts
    (`myreg:5000`) or CIDRs (`10.0.0.0/8`) that may use plain HTTP or unverified TLS."""

    def __init__(
        self,
        insecure: Iterable[str] = (),
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 60.0,
        user_agent: str = "skiff",
    ) -> None:
        self._insecure_hosts: set[str] = set()
        self._insecure_nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in insecure:
            try:
                self._insecure_nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self._insecure_hosts.add(item.lower())
        self._verified = ssl_context or ssl.create_default_context()
        self._unverified = ssl.create_default_context()
        self._unverified.check_hostname = False
        self._unverified.verify_mode = ssl.CERT_NONE
        self.timeout = timeout
        self.user_agent = user_agent
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._schemes: dict[str, str] = {}

    # --- policy -------------------------------------------------------------

    def is_insecure(self, host: str) -> bool:
        if host.lower() in self._insecure_hosts or is_loopback(host):
            return True
        try:
            addr = ipaddress.ip_address(_hostname(host))
        except ValueError:
            return False
        return any(addr in net for net in self._insecure_nets)

    def schemes(self, host: str) -> list[str]:
        """URL schemes to try for a host, best first (the one that worked, if known)."""
        with self._lock:
            known = self._schemes.get(host)
        if known:
            return [known]
        return ["https", "http"] if self.is_insecure(host) else ["https"]

    def remember_scheme(self, host: str, scheme: str) -> None:
        with self._lock:
            self._schemes[host] = scheme

    # --- requests -------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        *,
        follow_redirects: bool = True,
    ) -> Response:
        """Send one request, following redirects for GET and HEAD (without the
        Authorization header when the redirect leaves the host: blob stores such as
        S3 refuse it). Connection failures raise RegistryUnavailable."""
        hdrs = dict(headers or {})
        for _ in range(_MAX_REDIRECTS + 1):
            resp = self._send(method, url, hdrs, body)
            if not (follow_redirects and resp.status in _REDIRECTS and method in ("GET", "HEAD")):
                return resp
            location = resp.header("Location")
            resp.read()
            resp.close()
            if not location:
                raise RegistryError(f"{method} {url}: redirect without a Location")
            target = urljoin(url, location)
            if urlsplit(target).netloc != urlsplit(url).netloc:
                hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
            url = target
        raise RegistryError(f"{method} {url}: too many redirects")

    def _send(self, method: str, url: str, headers: dict[str, str], body: Body) -> Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise RegistryError(f"unsupported URL scheme in {url!r}")
        if parts.scheme == "http" and not self.is_insecure(parts.netloc):
            raise RegistryError(f"refusing plain HTTP to {parts.netloc}: not an insecure registry")
        key = (parts.scheme, parts.netloc)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers.setdefault("User-Agent", self.user_agent)
        replayable = body is None or isinstance(body, bytes)
        # A pooled keep-alive connection may have been closed by the server meanwhile:
        # one retry on a fresh connection (only when the body can be sent again).
        for attempt in range(2):
            conn, pooled = self._acquire(key)
            try:
                conn.request(method, path, body=cast(Any, body), headers=headers)
                raw = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                if pooled and replayable and attempt == 0 and _stale(e):
                    continue
                raise RegistryUnavailable(f"{method} {url}: {_why(e)}") from e
            if method == "HEAD":
                raw.read()
            return Response(self, key, conn, raw, url)
        raise AssertionError("unreachable")

    def _acquire(self, key: tuple[str, str]) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        scheme, netloc = key
        conn: http.client.HTTPConnection
        if scheme == "https":
            ctx = self._unverified if self.is_insecure(netloc) else self._verified
            conn = http.client.HTTPSConnection(
                netloc, timeout=self.timeout, context=ctx, blocksize=_BLOCK
            )
        else:
            conn = http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=_BLOCK)
        return conn, False

    def _release(self, key: tuple[str, str], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < 16:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            pools, self._idle = self._idle, {}
        for conns in pools.values():
            for conn in conns:
                conn.close()


def _stale(e: BaseException) -> bool:
    return isinstance(
        e,
        http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError,
    )


def _why(e: BaseException) -> str:
    if isinstance(e, ssl.SSLError):
        return f"TLS: {e.reason or e}"
    if isinstance(e, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(e, http.client.IncompleteRead):
        return f"connection closed after {len(e.partial)} bytes (truncated)"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    return str(e) or type(e).__name__


def iter_response(resp: Response, block: int = _BLOCK) -> Iterator[bytes]:
    buf = bytearray(block)
    view = memoryview(buf)
    while n := resp.readinto(view):
        yield bytes(view[:n])
