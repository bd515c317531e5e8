"""Registry authentication: the `WWW-Authenticate` challenge, bearer tokens, basic auth.

    GET /v2/...                      -> 401  WWW-Authenticate: Bearer realm="https://auth/token",
                                                  service="registry", scope="repository:a:pull"
    GET realm?service=registry&scope=repository:a:pull    (Basic user:password when known)
                                     -> {"token": "...", "expires_in": 300}
    GET /v2/... Authorization: Bearer <token>

A host's challenge is learned once (from `GET /v2/` or from any 401) and then every
request is authorized up front. Tokens are cached per (host, scopes) until shortly
before they expire. With `Basic`, the credentials go with every request. An identity
token (from `docker login` to a registry using OAuth) is exchanged with a
`grant_type=refresh_token` POST, as the docker CLI does.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from skiff.distribution.errors import (
    RegistryError,
    RegistryUnauthorized,
    RegistryUnavailable,
    describe,
)

if TYPE_CHECKING:
    from skiff.distribution.credentials import Credentials, CredentialSource
    from skiff.distribution.transport import Transport

_CHALLENGE_START = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)")
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(,|$)')
_TOKEN_MARGIN = 10.0  # seconds before expiry a token is fetched again
_MIN_TOKEN_LIFETIME = 60  # the spec's default for a missing expires_in


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer" or "basic"
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenges(values: list[str]) -> list[Challenge]:
    """Parse `WWW-Authenticate` header values (each may hold several challenges)."""
    out: list[Challenge] = []
    for value in values:
        pos = 0
        while pos < len(value):
            m = _CHALLENGE_START.match(value, pos)
            if m is None:
                break
            scheme = m.group(1).lower()
            pos = m.end()
            params: dict[str, str] = {}
            while pos < len(value):
                p = _PARAM.match(value, pos)
                if p is None:
                    break
                raw = p.group(2)
                params[p.group(1).lower()] = (
                    re.sub(r"\\(.)", r"\1", raw) if raw is not None else p.group(3)
                )
                pos = p.end()
            out.append(Challenge(scheme, params))
            while pos < len(value) and value[pos] in ", ":
                pos += 1
    return out


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class Authorizer:
    """Authorization headers per host and scope; thread-safe."""

    def __init__(self, transport: Transport, credentials: CredentialSource) -> None:
        self._transport = transport
        self._credentials = credentials
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge | None] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._fetching: dict[tuple[str, str], threading.Lock] = {}

    def known(self, host: str) -> bool:
        with self._lock:
            return host in self._challenges

    def learn(self, host: str, www_authenticate: list[str]) -> bool:
        """Record a host's challenge from a 401 (or a ping); False if none we speak."""
        for challenge in parse_challenges(www_authenticate):
            if challenge.scheme in ("bearer", "basic"):
                with self._lock:
                    self._challenges[host] = challenge
                return True
        return False

    def set_anonymous(self, host: str) -> None:
        with self._lock:
            self._challenges.setdefault(host, None)

    def credentials(self, registry: str) -> Credentials | None:
        return self._credentials.get(registry)

    def header(self, host: str, registry: str, scopes: tuple[str, ...]) -> str | None:
        """The Authorization value for a request to `host` needing `scopes`, or None.
        `registry` is the name credentials are stored under (docker.io for Hub)."""
        with self._lock:
            challenge = self._challenges.get(host)
        if challenge is None:
            return None
        creds = self._credentials.get(registry)
        if challenge.scheme == "basic":
            if creds is None or not creds.username:
                return None
            return basic_header(creds.username, creds.password)
        if creds is not None and creds.registry_token:
            return "Bearer " + creds.registry_token
        return "Bearer " + self._token(host, challenge, creds, scopes)

    def invalidate(self, host: str, scopes: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop((host, " ".join(sorted(scopes))), None)

    def _token(
        self, host: str, challenge: Challenge, creds: Credentials | None, scopes: tuple[str, ...]
    ) -> str:
        key = (host, " ".join(sorted(scopes)))
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached[1] > time.time():
                return cached[0]
            fetch_lock = self._fetching.setdefault(key, threading.Lock())
        with fetch_lock:  # one token request per scope at a time, however many layers ask
            with self._lock:
                cached = self._tokens.get(key)
                if cached is not None and cached[1] > time.time():
                    return cached[0]
            token, lifetime = fetch_token(self._transport, challenge, creds, scopes)
            with self._lock:
                self._tokens[key] = (token, time.time() + max(lifetime - _TOKEN_MARGIN, 1.0))
            return token


def fetch_token(
    transport: Transport,
    challenge: Challenge,
    creds: Credentials | None,
    scopes: tuple[str, ...],
) -> tuple[str, float]:
    """Ask the challenge's realm for a bearer token; returns (token, lifetime seconds)."""
    realm = challenge.realm
    if not realm or urlsplit(realm).scheme not in ("http", "https"):
        raise RegistryError(f"bearer challenge without a usable realm: {realm!r}")
    service = challenge.params.get("service", "")
    query: list[tuple[str, str]] = []
    if service:
        query.append(("service", service))
    query += [("scope", s) for s in scopes]
    headers = {"Accept": "application/json"}
    if creds is not None and creds.identity_token:
        form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", creds.identity_token),
            ("client_id", "skiff"),
        ]
        if service:
            form.append(("service", service))
        form += [("scope", " ".join(scopes))] if scopes else []
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        resp = transport.request("POST", realm, headers, urlencode(form).encode())
    else:
        if creds is not None and creds.username:
            headers["Authorization"] = basic_header(creds.username, creds.password)
        sep = "&" if "?" in realm else "?"
        url = realm + (sep + urlencode(query) if query else "")
        resp = transport.request("GET", url, headers)
    with resp:
        body = resp.read(1 << 20)
    if resp.status in (401, 403):
        raise RegistryUnauthorized(f"getting a token from {realm}: {describe(resp.status, body)}")
    if resp.status == 429 or resp.status >= 500:
        raise RegistryUnavailable(f"getting a token from {realm}: {describe(resp.status, body)}")
    if resp.status != 200:
        raise RegistryError(f"getting a token from {realm}: {describe(resp.status, body)}")
    try:
        doc = json.loads(body)
    except ValueError:
        raise RegistryError(f"token server {realm} answered invalid JSON") from None
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryError(f"token server {realm} answered without a token")
    expires = doc.get("expires_in")
    lifetime = float(expires) if isinstance(expires, int | float) and expires > 0 else 0.0
    return token, max(lifetime, _MIN_TOKEN_LIFETIME)
