"""The registry client: one `RegistryClient` per operation set, one `Repository` per name.

    client = RegistryClient(DockerConfig("~/.docker/config.json"))
    repo = client.repository("docker.io", "library/busybox")         # pull scope
    desc, data = repo.get_manifest("latest")                          # verified digest
    repo.fetch_blob(layer, store)                                     # resumable, verified
    repo = client.repository("127.0.0.1:5000", "app", push=True)      # pull,push scope
    repo.push_blob(layer, opener, mount_from=["other/app"])           # HEAD, mount, upload
    repo.put_manifest("v1", desc.media_type, data)

Endpoints (distribution-spec): GET /v2/ (ping: the scheme and the auth challenge),
GET|HEAD /v2/<name>/manifests/<tag|digest>, GET|HEAD /v2/<name>/blobs/<digest>
(with Range to resume), POST /v2/<name>/blobs/uploads/[?mount=&from=], PATCH and
PUT <location>[?digest=], PUT /v2/<name>/manifests/<ref>.

Requests are retried (with backoff, honouring Retry-After) on 429, 502-504 and lost
connections, for requests whose body can be sent again; a blob download resumes from
what its ingest holds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING
from urllib.parse import quote, urljoin

from skiff.content.types import BlobExists, IngestLocked, VerifyFailed
from skiff.distribution.auth import Authorizer
from skiff.distribution.credentials import CredentialSource, NoCredentials
from skiff.distribution.errors import (
    ManifestTooLarge,
    RegistryError,
    RegistryUnauthorized,
    RegistryUnavailable,
    UnsupportedMediaType,
    VerificationFailed,
    from_response,
)
from skiff.distribution.transport import Body, Response, Transport, registry_host
from skiff.oci import mediatypes as mt
from skiff.oci.descriptor import Descriptor
from skiff.oci.digest import Digest, InvalidDigest

if TYPE_CHECKING:
    from skiff.content.types import Ingester, Writer

MAX_MANIFEST_SIZE = 4 << 20  # as containerd and dockerd
MANIFEST_ACCEPT = (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST)
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_BLOCK = 1 << 20
INGEST_PREFIX = "pull-"

Progress = Callable[[int], None]  # bytes done so far


class RegistryClient:
    """Talks to any number of registries with one set of credentials; thread-safe."""

    def __init__(
        self,
        credentials: CredentialSource | None = None,
        *,
        transport: Transport | None = None,
        insecure: tuple[str, ...] = (),
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.transport = transport or Transport(insecure)
        self.auth = Authorizer(self.transport, credentials or NoCredentials())
        self.retries = retries
        self.backoff = backoff
        self._bases: dict[str, str] = {}

    def repository(
        self, domain: str, path: str, *, push: bool = False, display: str = ""
    ) -> Repository:
        return Repository(self, domain, path, push=push, display=display)

    def base_url(self, domain: str) -> str:
        """`https://host` (or http for an insecure one that speaks no TLS), after a ping."""
        host = registry_host(domain)
        base = self._bases.get(host)
        if base is None:
            self.ping(domain)
            base = self._bases[host]
        return base

    def ping(self, domain: str) -> int:
        """GET /v2/: pick the scheme and learn the auth challenge. Returns the status."""
        host = registry_host(domain)
        last: Exception | None = None
        for scheme in self.transport.schemes(host):
            try:
                resp = self.transport.request("GET", f"{scheme}://{host}/v2/")
            except RegistryUnavailable as e:
                last = e
                continue
            with resp:
                resp.read(1 << 16)
            self.transport.remember_scheme(host, scheme)
            self._bases[host] = f"{scheme}://{host}"
            if resp.status == 401:
                self.auth.learn(host, resp.headers.get_all("WWW-Authenticate") or [])
            elif resp.status < 300:
                self.auth.set_anonymous(host)
            return resp.status
        raise RegistryUnavailable(f"registry {domain} is unreachable: {last}")

    def check_login(self, domain: str) -> None:
        """`docker login`: GET /v2/ with the credentials; Unauthorized if refused."""
        host = registry_host(domain)
        status = self.ping(domain)
        if status == 401:
            # A bearer registry: a token without a scope proves the credentials.
            header = self.auth.header(host, domain, ())
            resp = self.transport.request(
                "GET", f"{self._bases[host]}/v2/", {"Authorization": header} if header else {}
            )
            with resp:
                body = resp.read(1 << 16)
            status = resp.status
            if status >= 300:
                raise from_response(status, body, f"login to {domain}", action="login")
        elif status >= 300:
            raise RegistryError(f"login to {domain}: unexpected status {status} from /v2/")

    def close(self) -> None:
        self.transport.close()


class Repository:
    def __init__(
        self, client: RegistryClient, domain: str, path: str, *, push: bool, display: str
    ) -> None:
        self.client = client
        self.domain = domain
        self.host = registry_host(domain)
        self.path = path
        self.display = display or (path if domain == "docker.io" else f"{domain}/{path}")
        actions = "pull,push" if push else "pull"
        self.scopes: tuple[str, ...] = (f"repository:{path}:{actions}",)
        self.action = "push" if push else "pull"

    # --- requests ------------------------------------------------------------

    def url(self, tail: str) -> str:
        return f"{self.client.base_url(self.domain)}/v2/{self.path}/{tail}"

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        *,
        scopes: tuple[str, ...] | None = None,
        follow_redirects: bool = True,
    ) -> Response:
        """Send with authorization; on a 401 learn the challenge and retry once; retry
        429/5xx/lost connections with backoff when the body can be sent again."""
        scopes = scopes or self.scopes
        replayable = body is None or isinstance(body, bytes)
        auth_retried = False
        attempt = 0
        while True:
            hdrs = dict(headers or {})
            try:
                value = self.client.auth.header(self.host, self.domain, scopes)
            except RegistryUnauthorized as e:
                raise RegistryUnauthorized(
                    f"{self.action} access denied for {self.display}: {e}"
                ) from None
            if value:
                hdrs["Authorization"] = value
            try:
                resp = self.client.transport.request(
                    method, url, hdrs, body, follow_redirects=follow_redirects
                )
            except RegistryUnavailable:
                if not replayable or attempt >= self.client.retries:
                    raise
                self._sleep(attempt, None)
                attempt += 1
                continue
            challenges = resp.headers.get_all("WWW-Authenticate") or []
            if resp.status == 401 and not auth_retried and replayable and challenges:
                auth_retried = True
                self.client.auth.invalidate(self.host, scopes)
                if self.client.auth.learn(self.host, challenges):
                    resp.read(1 << 16)
                    resp.close()
                    continue
            if resp.status in _RETRY_STATUS and replayable and attempt < self.client.retries:
                retry_after = _retry_after(resp)
                resp.read(1 << 16)
                resp.close()
                self._sleep(attempt, retry_after)
                attempt += 1
                continue
            return resp

    def _sleep(self, attempt: int, retry_after: float | None) -> None:
        delay = self.client.backoff * (2**attempt)
        if retry_after is not None:
            delay = min(max(delay, retry_after), 30.0)
        time.sleep(delay)

    def _fail(self, resp: Response, what: str) -> RegistryError | Exception:
        body = resp.read(1 << 16)
        resp.close()
        return from_response(
            resp.status, body, what, action=self.action, retry_after=_retry_after(resp)
        )

    # --- manifests -------------------------------------------------------------

    def get_manifest(self, reference: str) -> tuple[Descriptor, bytes]:
        """Fetch a manifest or index by tag or digest: (descriptor, bytes), the digest
        verified (against the reference, or the registry's Docker-Content-Digest)."""
        what = self.what(reference)
        try:
            resp = self.request(
                "GET", self.url(f"manifests/{quote(reference, safe=':@')}"),
                {"Accept": ", ".join(MANIFEST_ACCEPT)},
            )  # fmt: skip
        except RegistryUnavailable as e:  # no answer at all: say which image it was for
            raise RegistryUnavailable(f"{what}: {e}", e.retry_after) from e
        if resp.status != 200:
            raise self._fail(resp, what)
        with resp:
            length = resp.length
            if length is not None and length > MAX_MANIFEST_SIZE:
                raise ManifestTooLarge(
                    f"{what}: manifest of {length} bytes is over the {MAX_MANIFEST_SIZE} limit"
                )
            data = resp.read(MAX_MANIFEST_SIZE + 1)
            if len(data) > MAX_MANIFEST_SIZE:
                raise ManifestTooLarge(
                    f"{what}: manifest is over the {MAX_MANIFEST_SIZE} byte limit"
                )
            header_digest = resp.header("Docker-Content-Digest")
            content_type = resp.header("Content-Type").split(";")[0].strip()
        digest = self._verify_manifest(what, reference, header_digest, data)
        media_type = manifest_media_type(data, content_type, what)
        return Descriptor(media_type, digest, len(data)), data

    def _verify_manifest(self, what: str, reference: str, header: str, data: bytes) -> Digest:
        expected: Digest | None = None
        if ":" in reference and not reference.startswith(":"):
            with contextlib.suppress(InvalidDigest):
                expected = Digest.parse(reference)
        if expected is None and header:
            with contextlib.suppress(InvalidDigest):
                expected = Digest.parse(header)
        if expected is None:
            return Digest.from_bytes(data)
        actual = Digest.from_bytes(data, expected.algorithm)
        if actual != expected:
            raise VerificationFailed(
                f"{what}: manifest verification failed: expected {expected}, got {actual}"
            )
        return actual if actual.algorithm == "sha256" else Digest.from_bytes(data)

    def head_manifest(self, reference: str) -> Digest | None:
        """The digest a tag points at, or None if the registry does not have it."""
        resp = self.request(
            "HEAD", self.url(f"manifests/{quote(reference, safe=':@')}"),
            {"Accept": ", ".join(MANIFEST_ACCEPT)},
        )  # fmt: skip
        with resp:
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise self._fail(resp, self.what(reference))
            try:
                return Digest.parse(resp.header("Docker-Content-Digest"))
            except InvalidDigest:
                return None

    def put_manifest(self, reference: str, media_type: str, data: bytes) -> Digest:
        resp = self.request(
            "PUT",
            self.url(f"manifests/{quote(reference, safe=':@')}"),
            {"Content-Type": media_type},
            data,
        )
        if resp.status not in (200, 201, 202):
            raise self._fail(resp, self.what(reference))
        with resp:
            resp.read(1 << 16)
        return Digest.from_bytes(data)

    def what(self, reference: str) -> str:
        sep = "@" if ":" in reference else ":"
        return f"manifest for {self.display}{sep}{reference}"

    # --- blobs: pull -------------------------------------------------------------

    def fetch_blob(
        self,
        desc: Descriptor,
        ingester: Ingester,
        *,
        on_progress: Progress | None = None,
        on_verify: Callable[[], None] | None = None,
        lock_wait: float = 600.0,
    ) -> bool:
        """Stream a blob into the store, verified; resume from what the ingest holds.
        Returns False when the store already had it. Retries lost connections and
        truncated bodies (continuing with Range); on a wrong digest the ingest is
        dropped and VerificationFailed raised."""
        ref = f"{INGEST_PREFIX}{desc.digest}"
        deadline = time.monotonic() + lock_wait
        attempt = 0
        while True:
            try:
                writer = ingester.writer(ref, desc.digest, desc.size)
            except BlobExists:
                return False
            except IngestLocked:
                # Another pull (in this process or another) is fetching it: wait for it.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            try:
                self._download(desc, writer, on_progress)
                if on_verify is not None:
                    on_verify()
                try:
                    writer.commit(desc.digest, desc.size)
                except VerifyFailed as e:
                    raise VerificationFailed(
                        f"filesystem layer verification failed for digest {desc.digest} "
                        f"of {self.display}: {e}"
                    ) from None
                return True
            except RegistryUnavailable:
                writer.close()  # keep the bytes: the next attempt (or pull) resumes
                if attempt >= self.client.retries:
                    raise
                self._sleep(attempt, None)
                attempt += 1
            except BaseException:
                writer.close()
                raise

    def _download(self, desc: Descriptor, writer: Writer, on_progress: Progress | None) -> None:
        offset = writer.offset
        if offset >= desc.size:
            return
        what = f"blob {desc.digest} of {self.display}"
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self.request("GET", self.url(f"blobs/{desc.digest}"), headers)
        skip = 0
        if resp.status == 206:
            start = _content_range_start(resp.header("Content-Range"))
            if start != offset:
                resp.close()
                raise RegistryError(f"{what}: asked for bytes from {offset}, got from {start}")
        elif resp.status == 200:
            skip = offset  # the registry ignored Range: drop what we already hold
        else:
            raise self._fail(resp, what)
        if on_progress is not None:
            on_progress(offset)
        buf = bytearray(_BLOCK)
        view = memoryview(buf)
        with resp:
            while True:
                n = resp.readinto(view)
                if n == 0:
                    break
                chunk = view[:n]
                if skip:
                    drop = min(skip, n)
                    skip -= drop
                    chunk = chunk[drop:]
                    if not chunk:
                        continue
                if writer.offset + len(chunk) > desc.size:
                    writer.abort()  # not the blob we asked for: keep nothing of it
                    raise VerificationFailed(
                        f"filesystem layer verification failed for digest {desc.digest} of "
                        f"{self.display}: more than the {desc.size} bytes its descriptor says"
                    )
                writer.write(bytes(chunk))
                if on_progress is not None:
                    on_progress(writer.offset)
        if writer.offset < desc.size:
            raise RegistryUnavailable(
                f"{what}: connection closed after {writer.offset} of {desc.size} bytes (truncated)"
            )

    def read_blob(self, desc: Descriptor, limit: int = 64 << 20) -> bytes:
        """A small blob (a config) in memory, verified."""
        what = f"blob {desc.digest} of {self.display}"
        if desc.size > limit:
            raise RegistryError(f"{what}: {desc.size} bytes is over the {limit} byte limit")
        resp = self.request("GET", self.url(f"blobs/{desc.digest}"))
        if resp.status != 200:
            raise self._fail(resp, what)
        with resp:
            data = resp.read(desc.size + 1)
        if len(data) != desc.size or Digest.from_bytes(data, desc.digest.algorithm) != desc.digest:
            raise VerificationFailed(f"{what}: content does not match its digest")
        return data

    # --- blobs: push --------------------------------------------------------------

    def blob_exists(self, digest: Digest) -> bool:
        resp = self.request("HEAD", self.url(f"blobs/{digest}"))
        with resp:
            if resp.status == 200:
                return True
            if resp.status == 404:
                return False
            raise self._fail(resp, f"blob {digest} of {self.display}")

    def mount_blob(self, digest: Digest, source: str) -> tuple[bool, str]:
        """Cross-repository mount: (True, "") when mounted, else (False, the upload
        location the registry opened instead)."""
        scopes = (*self.scopes, f"repository:{source}:pull")
        url = self.url(f"blobs/uploads/?mount={digest}&from={quote(source, safe='/')}")
        resp = self.request("POST", url, {"Content-Length": "0"}, b"", scopes=scopes)
        with resp:
            if resp.status == 201:
                resp.read(1 << 16)
                return True, ""
            if resp.status == 202:
                resp.read(1 << 16)
                return False, urljoin(resp.url, resp.header("Location"))
            if resp.status in (401, 403, 404):  # no pull right on the source: upload instead
                resp.read(1 << 16)
                return False, ""
            raise self._fail(resp, f"blob {digest} of {self.display}")

    def start_upload(self) -> str:
        resp = self.request("POST", self.url("blobs/uploads/"), {"Content-Length": "0"}, b"")
        if resp.status != 202:
            raise self._fail(resp, f"upload to {self.display}")
        with resp:
            resp.read(1 << 16)
            location = resp.header("Location")
        if not location:
            raise RegistryError(f"upload to {self.display}: no Location in the answer")
        return urljoin(resp.url, location)

    def upload_blob(
        self,
        desc: Descriptor,
        opener: Callable[[], IO[bytes]],
        *,
        location: str = "",
        chunk_size: int | None = None,
        on_progress: Progress | None = None,
    ) -> None:
        """Upload a blob: monolithic (PUT ?digest= with the body) or, with `chunk_size`,
        chunked (PATCH with Content-Range per chunk, then PUT ?digest=)."""
        what = f"blob {desc.digest} to {self.display}"
        attempt = 0
        while True:
            try:
                loc = location or self.start_upload()
                location = ""
                with opener() as f:
                    if chunk_size is None or desc.size <= chunk_size:
                        body = _Counting(f, on_progress)
                        resp = self.request(
                            "PUT",
                            _with_query(loc, f"digest={desc.digest}"),
                            {
                                "Content-Type": "application/octet-stream",
                                "Content-Length": str(desc.size),
                            },
                            body,
                        )
                    else:
                        loc = self._patch_chunks(desc, f, loc, chunk_size, on_progress, what)
                        resp = self.request(
                            "PUT",
                            _with_query(loc, f"digest={desc.digest}"),
                            {"Content-Length": "0"},
                            b"",
                        )
                if resp.status not in (201, 204):
                    raise self._fail(resp, what)
                with resp:
                    resp.read(1 << 16)
                return
            except RegistryUnavailable:
                if attempt >= self.client.retries:
                    raise
                self._sleep(attempt, None)
                attempt += 1

    def _patch_chunks(
        self,
        desc: Descriptor,
        f: IO[bytes],
        location: str,
        chunk_size: int,
        on_progress: Progress | None,
        what: str,
    ) -> str:
        done = 0
        while done < desc.size:
            chunk = f.read(min(chunk_size, desc.size - done))
            if not chunk:
                raise RegistryError(f"{what}: the local blob is shorter than {desc.size} bytes")
            resp = self.request(
                "PATCH",
                location,
                {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{done}-{done + len(chunk) - 1}",
                    "Content-Length": str(len(chunk)),
                },
                chunk,
            )
            if resp.status != 202:
                raise self._fail(resp, what)
            with resp:
                resp.read(1 << 16)
                next_location = resp.header("Location")
            if next_location:
                location = urljoin(resp.url, next_location)
            done += len(chunk)
            if on_progress is not None:
                on_progress(done)
        return location


class _Counting:
    """A file wrapper that reports how much http.client has read from it."""

    def __init__(self, f: IO[bytes], on_progress: Progress | None) -> None:
        self._f = f
        self._on_progress = on_progress
        self._done = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._done += len(data)
        if self._on_progress is not None and data:
            self._on_progress(self._done)
        return data


def manifest_media_type(data: bytes, content_type: str, what: str) -> str:
    """The media type of a fetched manifest: its own `mediaType`, else Content-Type,
    else guessed from its shape. UnsupportedMediaType for anything not OCI/schema2."""
    import json

    try:
        doc = json.loads(data)
    except ValueError:
        raise RegistryError(f"{what}: the manifest is not JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{what}: the manifest is not a JSON object")
    field = doc.get("mediaType")
    media_type = field if isinstance(field, str) and field else content_type
    if media_type in ("", "application/json", "text/plain"):
        if doc.get("schemaVersion") == 1:
            media_type = mt.DOCKER_MANIFEST_V1
        elif "manifests" in doc:
            media_type = mt.OCI_INDEX
        elif "config" in doc and "layers" in doc:
            media_type = mt.OCI_MANIFEST
    if media_type in (mt.DOCKER_MANIFEST_V1, mt.DOCKER_MANIFEST_V1_SIGNED):
        raise UnsupportedMediaType(
            f"{what}: Docker image manifest schema 1 ({media_type}) is not supported; "
            "push the image again with a newer client"
        )
    if not (mt.is_manifest(media_type) or mt.is_index(media_type)):
        raise UnsupportedMediaType(f"{what}: unsupported manifest media type {media_type!r}")
    return media_type


def _retry_after(resp: Response) -> float | None:
    value = resp.header("Retry-After")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _content_range_start(value: str) -> int:
    # "bytes 100-199/200"
    try:
        return int(value.rsplit(maxsplit=1)[-1].split("-", 1)[0])
    except (ValueError, IndexError):
        return -1


def _with_query(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query
