"""An in-process OCI registry for tests: enough of the distribution spec, auth, faults.

    with FakeRegistry(auth="bearer", users={"alice": "secret"}) as reg:
        digest = reg.add_image("app", "v1", [layer_tar_gz])
        reg.faults.append(Fault("GET", r"/blobs/", truncate_after=1000))
        ... pull from reg.host (127.0.0.1:PORT, plain HTTP) ...
        assert any("Range" in r.headers for r in reg.requests)

Auth modes: "none"; "basic" (users); "bearer" (a token endpoint at /token on the
same server; anonymous tokens grant pull when `anonymous_pull`, a user's grant
pull and push). A `Fault` answers matching requests `times` times with a status,
a truncated body, corrupted bytes or extra headers, so error paths are testable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass
class Fault:
    method: str
    path: str  # a regex searched in the request path
    status: int | None = None  # answer with this status (and a JSON error body)
    times: int = 1
    truncate_after: int | None = None  # send only so many body bytes, then close
    corrupt: bool = False  # flip a byte of the body
    headers: dict[str, str] = field(default_factory=dict)
    code: str = "UNKNOWN"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    def __init__(
        self,
        auth: str = "none",
        users: dict[str, str] | None = None,
        *,
        anonymous_pull: bool = True,
        ignore_range: bool = False,
        token_expires: int = 300,
    ) -> None:
        self.auth = auth
        self.users = dict(users or {})
        self.anonymous_pull = anonymous_pull
        self.ignore_range = ignore_range
        self.token_expires = token_expires
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}  # digest -> (media type, bytes)
        self.tags: dict[tuple[str, str], str] = {}  # (repo, tag) -> digest
        self.repo_blobs: dict[str, set[str]] = {}  # repo -> blob digests it holds
        self.uploads: dict[str, bytearray] = {}
        self.tokens: dict[str, tuple[str, set[tuple[str, str]]]] = {}  # token -> (user, grants)
        self.token_requests: list[dict[str, list[str]]] = []
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> FakeRegistry:
        registry = self

        class Handler(_Handler):
            reg = registry

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    # --- content ---------------------------------------------------------------

    def put_blob(self, repo: str, data: bytes) -> str:
        digest = digest_of(data)
        with self.lock:
            self.blobs[digest] = data
            self.repo_blobs.setdefault(repo, set()).add(digest)
        return digest

    def put_manifest(self, repo: str, ref: str, media_type: str, data: bytes) -> str:
        digest = digest_of(data)
        with self.lock:
            self.manifests[digest] = (media_type, data)
            if not ref.startswith("sha256:"):
                self.tags[(repo, ref)] = digest
            self.repo_blobs.setdefault(repo, set()).add(digest)
        return digest

    def add_image(
        self,
        repo: str,
        tag: str,
        layers: list[bytes],
        *,
        config: dict[str, Any] | None = None,
        diff_ids: list[str] | None = None,
        layer_media_type: str = OCI_LAYER_GZIP,
        media_type: str = OCI_MANIFEST,
    ) -> tuple[str, bytes]:
        """Store an image; returns (manifest digest, manifest bytes)."""
        doc = config or {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids or [digest_of(la) for la in layers]},
        }
        cfg = json.dumps(doc).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": OCI_CONFIG
                if media_type == OCI_MANIFEST
                else "application/vnd.docker.container.image.v1+json",
                "digest": self.put_blob(repo, cfg),
                "size": len(cfg),
            },
            "layers": [
                {"mediaType": layer_media_type, "digest": self.put_blob(repo, la), "size": len(la)}
                for la in layers
            ],
        }
        data = json.dumps(manifest).encode()
        return self.put_manifest(repo, tag, media_type, data), data

    def requests_for(self, method: str, pattern: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]


_ROUTE = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs/uploads|blobs)/?(?P<ref>[^/]*)$")


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hangs up early (a refused manifest) is not news


class _Handler(BaseHTTPRequestHandler):
    reg: FakeRegistry
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- plumbing ---------------------------------------------------------------

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        fault = getattr(self, "_fault", None)
        self.send_response(status)
        hdrs = dict(headers or {})
        if fault is not None:
            hdrs.update(fault.headers)
        hdrs.setdefault("Content-Length", str(len(body)))
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault is not None and fault.corrupt and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        if fault is not None and fault.truncate_after is not None:
            self.wfile.write(body[: fault.truncate_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

    def _take_fault(self, path: str) -> Fault | None:
        with self.reg.lock:
            for fault in self.reg.faults:
                if fault.method == self.command and re.search(fault.path, path) and fault.times:
                    fault.times -= 1
                    return fault
        return None

    # --- auth ---------------------------------------------------------------------

    def _challenge(self, scope: str) -> dict[str, str]:
        if self.reg.auth == "basic":
            return {"WWW-Authenticate": 'Basic realm="fake-registry"'}
        realm = f"http://{self.reg.host}/token"
        value = f'Bearer realm="{realm}",service="fake-registry"'
        if scope:
            value += f',scope="{scope}"'
        return {"WWW-Authenticate": value}

    def _basic_user(self) -> str | None:
        value = self.headers.get("Authorization", "")
        if not value.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if self.reg.users.get(user) == password and user else None

    def _authorized(self, repo: str, action: str) -> bool:
        if self.reg.auth == "none":
            return True
        if self.reg.auth == "basic":
            return self._basic_user() is not None
        value = self.headers.get("Authorization", "")
        if not value.startswith("Bearer "):
            return False
        with self.reg.lock:
            grant = self.reg.tokens.get(value[7:])
        if grant is None:
            return False
        return not repo or (repo, action) in grant[1]

    def _token(self, query: dict[str, list[str]]) -> None:
        with self.reg.lock:
            self.reg.token_requests.append(query)
        user = ""
        if self.headers.get("Authorization"):
            found = self._basic_user()
            if found is None:
                self._send(401, b'{"details":"incorrect username or password"}')
                return
            user = found
        grants: set[tuple[str, str]] = set()
        for scope in query.get("scope", []):
            for one in scope.split(" "):
                parts = one.split(":")
                if len(parts) != 3 or parts[0] != "repository":
                    continue
                for action in parts[2].split(","):
                    if user or (action == "pull" and self.reg.anonymous_pull):
                        grants.add((parts[1], action))
        token = secrets.token_hex(16)
        with self.reg.lock:
            self.reg.tokens[token] = (user, grants)
        body = json.dumps({"token": token, "expires_in": self.reg.token_expires}).encode()
        self._send(200, body, {"Content-Type": "application/json"})

    # --- dispatch ---------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        with self.reg.lock:
            self.reg.requests.append(Request(self.command, self.path, dict(self.headers)))
        body = self._body() if self.command in ("PUT", "POST", "PATCH") else b""
        self._fault = self._take_fault(parts.path)
        if self._fault is not None and self._fault.status is not None:
            status = self._fault.status
            self._error(status, self._fault.code, f"injected {status}")
            return
        if parts.path == "/token":
            self._token(query)
            return
        if parts.path in ("/v2/", "/v2"):
            if not self._authorized("", "pull"):
                self._error(401, "UNAUTHORIZED", "authentication required", self._challenge(""))
                return
            self._send(200, b"{}", {"Content-Type": "application/json"})
            return
        m = _ROUTE.match(parts.path)
        if m is None:
            self._error(404, "NOT_FOUND", "not found")
            return
        repo, kind, ref = m.group("name"), m.group("kind"), m.group("ref")
        action = "pull" if self.command in ("GET", "HEAD") else "push"
        if not self._authorized(repo, action):
            scope = f"repository:{repo}:{'pull' if action == 'pull' else 'pull,push'}"
            self._error(401, "UNAUTHORIZED", "authentication required", self._challenge(scope))
            return
        if kind == "manifests":
            self._manifests(repo, ref, body)
        elif kind == "blobs":
            self._blobs(repo, ref)
        else:
            self._uploads(repo, ref, query, body)

    def _manifests(self, repo: str, ref: str, body: bytes) -> None:
        reg = self.reg
        if self.command == "PUT":
            media_type = self.headers.get("Content-Type", "")
            digest = reg.put_manifest(repo, ref, media_type, body)
            self._send(
                201,
                b"",
                {"Docker-Content-Digest": digest, "Location": f"/v2/{repo}/manifests/{digest}"},
            )
            return
        with reg.lock:
            digest = ref if ref.startswith("sha256:") else reg.tags.get((repo, ref), "")
            found = reg.manifests.get(digest)
        if found is None:
            self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            return
        media_type, data = found
        self._send(200, data, {"Content-Type": media_type, "Docker-Content-Digest": digest})

    def _blobs(self, repo: str, digest: str) -> None:
        with self.reg.lock:
            linked = digest in self.reg.repo_blobs.get(repo, set())
            data = self.reg.blobs.get(digest) if linked else None
        if data is None:
            self._error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            return
        rng = self.headers.get("Range", "")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
        if m and not self.reg.ignore_range and self.command == "GET":
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            if start >= len(data):
                self._error(416, "RANGE_INVALID", "range not satisfiable")
                return
            part = data[start : end + 1]
            self._send(
                206, part,
                {"Content-Range": f"bytes {start}-{end}/{len(data)}", "Docker-Content-Digest": digest},
            )  # fmt: skip
            return
        self._send(
            200, data, {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream"}
        )

    def _uploads(self, repo: str, upload_id: str, query: dict[str, list[str]], body: bytes) -> None:
        reg = self.reg
        if self.command == "POST":
            mount, source = query.get("mount", [""])[0], query.get("from", [""])[0]
            if mount:
                with reg.lock:
                    ok = mount in reg.repo_blobs.get(source, set()) and mount in reg.blobs
                    if ok:
                        reg.repo_blobs.setdefault(repo, set()).add(mount)
                if ok:
                    self._send(
                        201,
                        b"",
                        {"Location": f"/v2/{repo}/blobs/{mount}", "Docker-Content-Digest": mount},
                    )
                    return
            digest = query.get("digest", [""])[0]
            if digest:
                if digest_of(body) != digest:
                    self._error(400, "DIGEST_INVALID", "digest did not match")
                    return
                reg.put_blob(repo, body)
                self._send(201, b"", {"Location": f"/v2/{repo}/blobs/{digest}"})
                return
            new = uuid.uuid4().hex
            with reg.lock:
                reg.uploads[new] = bytearray()
            self._send(
                202, b"", {"Location": f"/v2/{repo}/blobs/uploads/{new}?_state=x", "Range": "0-0"}
            )
            return
        with reg.lock:
            buf = reg.uploads.get(upload_id)
        if buf is None:
            self._error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown")
            return
        if self.command == "PATCH":
            crange = self.headers.get("Content-Range")
            if crange:
                start = int(crange.split("-")[0])
                if start != len(buf):
                    self._error(416, "RANGE_INVALID", "out of order chunk")
                    return
            buf += body
            self._send(
                202,
                b"",
                {"Location": f"/v2/{repo}/blobs/uploads/{upload_id}", "Range": f"0-{len(buf) - 1}"},
            )
            return
        if self.command == "PUT":
            buf += body
            digest = query.get("digest", [""])[0]
            if digest_of(bytes(buf)) != digest:
                self._error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
                return
            reg.put_blob(repo, bytes(buf))
            with reg.lock:
                reg.uploads.pop(upload_id, None)
            self._send(
                201,
                b"",
                {"Location": f"/v2/{repo}/blobs/{digest}", "Docker-Content-Digest": digest},
            )
            return
        self._error(405, "UNSUPPORTED", "method not allowed")
