"""The client: one `request` method over skiff.client.http, typed helpers for each endpoint.

Start-up time matters here (every CLI command pays it): plain classes rather than
dataclasses or NamedTuples (which import inspect and typing), no http.client (email,
urllib), and ssl imported only when a TLS connection is made.
"""

from __future__ import annotations

import json
import socket

from skiff.client.errors import ApiError, DaemonUnreachable
from skiff.client.http import encode_query, quote, read_response, send_request
from skiff.version import API_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterator, Mapping
    from typing import Any, BinaryIO

    from skiff.client.http import HttpResponse
    from skiff.hosts import Host

    QueryValue = str | int | bool | list[str] | None
    Body = bytes | BinaryIO | None  # a file-like body goes out chunked, as it is read


class TlsConfig:
    __slots__ = ("ca", "cert", "key", "verify")

    def __init__(
        self, ca: str | None, cert: str | None, key: str | None, verify: bool = True
    ) -> None:
        self.ca = ca  # verify the server against this CA (None: system CAs)
        self.cert = cert  # present this client certificate
        self.key = key
        self.verify = verify

    def context(self) -> ssl.SSLContext:
        import ssl

        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert:
            ctx.load_cert_chain(self.cert, self.key)
        return ctx


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers  # names as the daemon sent them
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _encode_query(query: Mapping[str, QueryValue] | None) -> str:
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "1" if value else "0"))
        elif isinstance(value, list):
            pairs.extend((key, v) for v in value)
        else:
            pairs.append((key, str(value)))
    return "?" + encode_query(pairs) if pairs else ""


def encode_filters(filters: Mapping[str, list[str]]) -> str:
    """Docker's map form, as the docker CLI sends it: {"key": {"value": true}}."""
    return json.dumps({k: dict.fromkeys(v, True) for k, v in filters.items()})


class _Exchange:
    """One request's connection and its response, closed together."""

    __slots__ = ("response", "sock")

    def __init__(self, sock: socket.socket, response: HttpResponse) -> None:
        self.sock = sock
        self.response = response

    def close(self) -> None:
        self.response.close()  # the socket closes only once its file has
        self.sock.close()


class Client:
    def __init__(
        self, host: Host, tls: TlsConfig | None = None, timeout: float | None = 60.0
    ) -> None:
        self.host = host
        self.tls = tls
        self.timeout = timeout

    def _connect(self, timeout: float | None) -> socket.socket:
        host = self.host
        if host.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(host.path)
            except OSError:
                sock.close()
                raise
            return sock
        sock = socket.create_connection((host.address, host.port), timeout)
        if self.tls is None:
            return sock
        try:
            return self.tls.context().wrap_socket(sock, server_hostname=host.address)
        except OSError:
            sock.close()
            raise

    def _http_host(self) -> str:
        if self.host.scheme == "unix":
            return "localhost"
        address = self.host.address
        return f"[{address}]:{self.host.port}" if ":" in address else f"{address}:{self.host.port}"

    def _open(
        self,
        method: str,
        path: str,
        query: Mapping[str, QueryValue] | None = None,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
    ) -> _Exchange:
        target = f"/v{API_VERSION}{quote(path)}{_encode_query(query)}"
        try:
            sock = self._connect(timeout)
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise DaemonUnreachable(str(self.host), exc.strerror or str(exc)) from None
        except OSError as exc:
            raise DaemonUnreachable(str(self.host), _reason(exc)) from None
        file = sock.makefile("rb")
        try:
            try:
                send_request(sock, method, target, self._http_host(), headers, body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the daemon answered before reading all of the body: read its answer
            response = read_response(file, method)
            if response.status >= 400:
                data = response.read()
                raise ApiError(response.status, _error_message(data, response.reason))
        except OSError as exc:
            file.close()
            sock.close()
            raise DaemonUnreachable(str(self.host), _reason(exc)) from None
        except BaseException:
            file.close()
            sock.close()
            raise
        return _Exchange(sock, response)

    def request(
        self,
        method: str,
        path: str,
        query: Mapping[str, QueryValue] | None = None,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        exchange = self._open(method, path, query, body, headers, timeout=self.timeout)
        try:
            data = exchange.response.read()
        finally:
            exchange.close()
        return Response(exchange.response.status, exchange.response.headers, data)

    def get_json(self, path: str, query: Mapping[str, QueryValue] | None = None) -> Any:
        return self.request("GET", path, query).json()

    def stream_json(
        self,
        method: str,
        path: str,
        query: Mapping[str, QueryValue] | None = None,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[Any]:
        """JSON messages as the daemon streams them (one per line, or back to back)."""
        exchange = self._open(method, path, query, body, headers, timeout=None)
        decoder = json.JSONDecoder()
        try:
            for line in _lines(exchange.response):
                text = line.decode("utf-8", "replace").strip()
                while text:
                    obj, end = decoder.raw_decode(text)
                    yield obj
                    text = text[end:].lstrip()
        finally:
            exchange.close()

    def stream_raw(
        self, method: str, path: str, query: Mapping[str, QueryValue] | None = None
    ) -> Iterator[bytes]:
        """The response body in pieces as it arrives (`docker save`'s tar)."""
        exchange = self._open(method, path, query, timeout=None)
        try:
            while chunk := exchange.response.read_some():
                yield chunk
        finally:
            exchange.close()

    # -- endpoints ------------------------------------------------------------------

    def ping(self) -> Mapping[str, str]:
        return self.request("GET", "/_ping").headers

    def version(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json("/version")
        return result

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json("/info")
        return result

    def disk_usage(self, kinds: list[str] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json("/system/df", {"type": kinds or None})
        return result

    def events(
        self,
        since: str | None = None,
        until: str | None = None,
        filters: Mapping[str, list[str]] | None = None,
    ) -> Iterator[dict[str, Any]]:
        query: dict[str, QueryValue] = {"since": since, "until": until}
        if filters:
            query["filters"] = encode_filters(filters)
        return self.stream_json("GET", "/events", query)

    # -- images ---------------------------------------------------------------------

    def images(
        self,
        all: bool = False,
        filters: Mapping[str, list[str]] | None = None,
        digests: bool = False,
    ) -> list[dict[str, Any]]:
        query: dict[str, QueryValue] = {"all": all or None, "digests": digests or None}
        if filters:
            query["filters"] = encode_filters(filters)
        result: list[dict[str, Any]] = self.get_json("/images/json", query)
        return result

    def inspect_image(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json(f"/images/{name}/json")
        return result

    def image_history(self, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get_json(f"/images/{name}/history")
        return result

    def tag_image(self, source: str, repo: str, tag: str | None = None) -> None:
        self.request("POST", f"/images/{source}/tag", {"repo": repo, "tag": tag})

    def remove_image(
        self, name: str, force: bool = False, noprune: bool = False
    ) -> list[dict[str, str]]:
        query: dict[str, QueryValue] = {"force": force or None, "noprune": noprune or None}
        result: list[dict[str, str]] = self.request("DELETE", f"/images/{name}", query).json()
        return result

    def import_image(
        self,
        source: BinaryIO,
        repo: str | None = None,
        tag: str | None = None,
        message: str | None = None,
        changes: list[str] | None = None,
        platform: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        query: dict[str, QueryValue] = {
            "fromSrc": "-",
            "repo": repo,
            "tag": tag,
            "message": message,
            "changes": changes or None,
            "platform": platform,
        }
        headers = {"Content-Type": "application/x-tar"}
        return self.stream_json("POST", "/images/create", query, source, headers)

    def load_images(self, source: BinaryIO, quiet: bool = False) -> Iterator[dict[str, Any]]:
        headers = {"Content-Type": "application/x-tar"}
        return self.stream_json("POST", "/images/load", {"quiet": quiet}, source, headers)

    def save_images(self, names: list[str]) -> Iterator[bytes]:
        return self.stream_raw("GET", "/images/get", {"names": names})

    def prune_images(self, filters: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
        query: dict[str, QueryValue] = {}
        if filters:
            query["filters"] = encode_filters(filters)
        result: dict[str, Any] = self.request("POST", "/images/prune", query).json()
        return result

    def build(
        self,
        context: BinaryIO,
        *,
        tags: list[str] | None = None,
        dockerfile: str = "",
        build_args: Mapping[str, str | None] | None = None,
        labels: Mapping[str, str] | None = None,
        target: str = "",
        no_cache: bool = False,
        pull: bool = False,
        quiet: bool = False,
        platform: str = "",
    ) -> Iterator[dict[str, Any]]:
        """POST /build with a tar context; the daemon's JSON messages as they come."""
        query: dict[str, QueryValue] = {
            "t": list(tags or []) or None,
            "dockerfile": dockerfile or None,
            "buildargs": json.dumps(dict(build_args)) if build_args else None,
            "labels": json.dumps(dict(labels)) if labels else None,
            "target": target or None,
            "nocache": no_cache or None,
            "pull": pull or None,
            "q": quiet or None,
            "platform": platform or None,
            "rm": True,
        }
        headers = {"Content-Type": "application/x-tar"}
        return self.stream_json("POST", "/build", query, context, headers)

    def prune_build_cache(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/build/prune").json()
        return result

    def pull_image(
        self, name: str, tag: str | None, platform: str | None, auth: str | None
    ) -> Iterator[dict[str, Any]]:
        query: dict[str, QueryValue] = {"fromImage": name, "tag": tag, "platform": platform}
        headers = {"X-Registry-Auth": auth} if auth else None
        return self.stream_json("POST", "/images/create", query, None, headers)

    def push_image(self, name: str, tag: str | None, auth: str | None) -> Iterator[dict[str, Any]]:
        headers = {"X-Registry-Auth": auth} if auth else None
        return self.stream_json("POST", f"/images/{name}/push", {"tag": tag}, None, headers)

    def login(self, username: str, password: str, server: str) -> dict[str, Any]:
        body = json.dumps(
            {"username": username, "password": password, "serveraddress": server}
        ).encode()
        headers = {"Content-Type": "application/json"}
        result: dict[str, Any] = self.request("POST", "/auth", None, body, headers).json()
        return result

    def bootstrap_image(self, kind: str, ref: str | None = None) -> dict[str, Any]:
        """skiff's own: make an image from the host (busybox-static), no registry."""
        query: dict[str, QueryValue] = {"kind": kind, "ref": ref}
        result: dict[str, Any] = self.request("POST", "/skiff/images/bootstrap", query).json()
        return result


def _lines(response: HttpResponse) -> Iterator[bytes]:
    """The body split after each newline, each line yielded as soon as it is complete."""
    pending = b""
    while data := response.read_some():
        pending += data
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending


def _reason(exc: OSError) -> str:
    if type(exc).__module__ == "ssl":  # ssl.SSLError, without importing ssl
        return "TLS: " + str(getattr(exc, "reason", None) or exc)
    return str(exc)


def _error_message(data: bytes, reason: str) -> str:
    try:
        decoded = json.loads(data)
    except ValueError:
        text = data.decode("utf-8", "replace").strip()
        return text or reason
    message = decoded.get("message") if isinstance(decoded, dict) else None
    if isinstance(message, str):
        return message
    return data.decode("utf-8", "replace").strip() or reason
