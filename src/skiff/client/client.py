"""The client: one `request` method over http.client, typed helpers for each endpoint."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple
from urllib.parse import quote, urlencode

from skiff.client.errors import ApiError, DaemonUnreachable
from skiff.hosts import Host
from skiff.version import API_VERSION

if TYPE_CHECKING:
    import ssl

QueryValue = str | int | bool | list[str] | None
Body = bytes | BinaryIO | None  # a file-like body goes out chunked, as it is read


# NamedTuples, not dataclasses, and ssl imported only for TLS: the CLI's start-up time
# matters (dataclasses pulls in inspect, ~40 ms; ssl ~20 ms).


class TlsConfig(NamedTuple):
    ca: str | None  # verify the server against this CA (None: system CAs)
    cert: str | None  # present this client certificate
    key: str | None
    verify: bool = True

    def context(self) -> ssl.SSLContext:
        import ssl

        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert:
            ctx.load_cert_chain(self.cert, self.key)
        return ctx


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Response(NamedTuple):
    status: int
    headers: Mapping[str, str]
    body: bytes

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
    return "?" + urlencode(pairs) if pairs else ""


def encode_filters(filters: Mapping[str, list[str]]) -> str:
    """Docker's map form, as the docker CLI sends it: {"key": {"value": true}}."""
    return json.dumps({k: dict.fromkeys(v, True) for k, v in filters.items()})


class Client:
    def __init__(
        self, host: Host, tls: TlsConfig | None = None, timeout: float | None = 60.0
    ) -> None:
        self.host = host
        self.tls = tls
        self.timeout = timeout

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        if self.host.scheme == "unix":
            return _UnixConnection(self.host.path, timeout)
        if self.tls is not None:
            return http.client.HTTPSConnection(
                self.host.address, self.host.port, timeout=timeout, context=self.tls.context()
            )
        return http.client.HTTPConnection(self.host.address, self.host.port, timeout=timeout)

    def _open(
        self,
        method: str,
        path: str,
        query: Mapping[str, QueryValue] | None = None,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._connect(timeout)
        url = f"/v{API_VERSION}{quote(path)}{_encode_query(query)}"
        try:
            conn.request(method, url, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            conn.close()
            raise DaemonUnreachable(str(self.host), exc.strerror or str(exc)) from None
        except OSError as exc:
            conn.close()
            if type(exc).__module__ == "ssl":  # ssl.SSLError, without importing ssl
                reason = getattr(exc, "reason", None) or str(exc)
                raise DaemonUnreachable(str(self.host), f"TLS: {reason}") from None
            raise DaemonUnreachable(str(self.host), str(exc)) from None
        if response.status >= 400:
            data = response.read()
            conn.close()
            raise ApiError(response.status, _error_message(data, response.reason))
        return conn, response

    def request(
        self,
        method: str,
        path: str,
        query: Mapping[str, QueryValue] | None = None,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        conn, response = self._open(method, path, query, body, headers, timeout=self.timeout)
        try:
            data = response.read()
        finally:
            conn.close()
        return Response(response.status, dict(response.getheaders()), data)

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
        conn, response = self._open(method, path, query, body, headers, timeout=None)
        decoder = json.JSONDecoder()
        try:
            while line := response.readline():
                text = line.decode("utf-8", "replace").strip()
                while text:
                    obj, end = decoder.raw_decode(text)
                    yield obj
                    text = text[end:].lstrip()
        finally:
            conn.close()

    def stream_raw(
        self, method: str, path: str, query: Mapping[str, QueryValue] | None = None
    ) -> Iterator[bytes]:
        """The response body in chunks as it arrives (`docker save`'s tar)."""
        conn, response = self._open(method, path, query, timeout=None)
        try:
            while chunk := response.read1(1 << 20):
                yield chunk
        finally:
            conn.close()

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

    def bootstrap_image(self, kind: str, ref: str | None = None) -> dict[str, Any]:
        """skiff's own: make an image from the host (busybox-static), no registry."""
        query: dict[str, QueryValue] = {"kind": kind, "ref": ref}
        result: dict[str, Any] = self.request("POST", "/skiff/images/bootstrap", query).json()
        return result


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
