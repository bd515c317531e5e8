"""Registry credentials: Docker's config.json, credential helpers, X-Registry-Auth.

    {"auths": {"https://index.docker.io/v1/": {"auth": base64("user:pass")},
               "127.0.0.1:5000": {"auth": "...", "identitytoken": "..."}},
     "credsStore": "pass",                     # docker-credential-pass for every server
     "credHelpers": {"gcr.io": "gcr"}}         # docker-credential-gcr for one server

A helper is run as `docker-credential-<name> get|store|erase` with the server on
stdin (JSON `{"ServerURL", "Username", "Secret"}` for store and get); a Username of
`<token>` means the secret is an identity token. Docker Hub's key is
`https://index.docker.io/v1/`; other registries are keyed by `host[:port]`, and keys
written as URLs (`https://host/v1/`) match too.

The docker CLI sends what it found as `X-Registry-Auth`: base64url of
`{"username", "password", "auth", "serveraddress", "identitytoken", "registrytoken"}`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from skiff.errors import InvalidArgument, SkiffError

DOCKER_HUB = "docker.io"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
TOKEN_USER = "<token>"


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth refresh token (Username "<token>" in helpers)
    registry_token: str = ""  # a bearer token to send as is

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)


class CredentialSource(Protocol):
    """Finds credentials for a registry host (`docker.io`, `127.0.0.1:5000`)."""

    def get(self, registry: str) -> Credentials | None: ...


class NoCredentials:
    def get(self, registry: str) -> Credentials | None:
        return None


class StaticCredentials:
    """One set of credentials (from X-Registry-Auth) for the registry it names, or
    for any registry when it names none (the docker CLI often leaves it out)."""

    def __init__(self, creds: Credentials, server: str = "") -> None:
        self.creds = creds
        self.server = normalize_server(server) if server else ""

    def get(self, registry: str) -> Credentials | None:
        if self.creds.empty:
            return None
        if self.server and self.server != normalize_server(registry):
            return None
        return self.creds


def normalize_server(server: str) -> str:
    """`https://index.docker.io/v1/` -> `docker.io`; `http://h:5000/v2/` -> `h:5000`."""
    s = server.strip()
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    s = s.split("/", 1)[0].lower()
    return DOCKER_HUB if s in _HUB_ALIASES else s


def config_key(registry: str) -> str:
    """The key Docker writes in `auths` for a registry host."""
    host = normalize_server(registry)
    return DOCKER_HUB_KEY if host == DOCKER_HUB else host


def decode_registry_auth(header: str) -> tuple[Credentials, str]:
    """X-Registry-Auth -> (credentials, serveraddress). An empty header means none."""
    text = header.strip()
    if not text:
        return Credentials(), ""
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError):
        try:
            raw = base64.b64decode(padded)
        except (binascii.Error, ValueError):
            raise InvalidArgument("invalid X-Registry-Auth header: not base64") from None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise InvalidArgument("invalid X-Registry-Auth header: not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
    username = _s(doc, "username")
    password = _s(doc, "password")
    if not username and _s(doc, "auth"):
        username, password = _split_auth(_s(doc, "auth"))
    creds = Credentials(
        username=username,
        password=password,
        identity_token=_s(doc, "identitytoken"),
        registry_token=_s(doc, "registrytoken"),
    )
    return creds, _s(doc, "serveraddress")


def encode_registry_auth(creds: Credentials, server: str = "") -> str:
    doc: dict[str, str] = {}
    if creds.username:
        doc["username"] = creds.username
    if creds.password:
        doc["password"] = creds.password
    if creds.identity_token:
        doc["identitytoken"] = creds.identity_token
    if creds.registry_token:
        doc["registrytoken"] = creds.registry_token
    if server:
        doc["serveraddress"] = server
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()


class CredentialHelperError(SkiffError):
    pass


class DockerConfig:
    """Credentials in a Docker config.json (read on every lookup: `login` in another
    process shows at once), with credsStore/credHelpers."""

    def __init__(self, path: str | os.PathLike[str], helper_prefix: str = "docker-credential-"):
        self.path = Path(path)
        self._helper_prefix = helper_prefix

    def _load(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as e:
            raise InvalidArgument(f"{self.path}: invalid JSON: {e}") from None
        return doc if isinstance(doc, dict) else {}

    def _helper(self, doc: dict[str, Any], registry: str) -> str:
        helpers = doc.get("credHelpers")
        if isinstance(helpers, dict):
            host = normalize_server(registry)
            for key, name in helpers.items():
                if normalize_server(str(key)) == host and isinstance(name, str) and name:
                    return name
        store = doc.get("credsStore")
        return store if isinstance(store, str) else ""

    def get(self, registry: str) -> Credentials | None:
        doc = self._load()
        helper = self._helper(doc, registry)
        if helper:
            return self._helper_get(helper, config_key(registry))
        auths = doc.get("auths")
        if not isinstance(auths, dict):
            return None
        host = normalize_server(registry)
        for key, entry in auths.items():
            if normalize_server(str(key)) != host or not isinstance(entry, dict):
                continue
            username, password = _s(entry, "username"), _s(entry, "password")
            if _s(entry, "auth"):
                username, password = _split_auth(_s(entry, "auth"))
            creds = Credentials(
                username=username,
                password=password,
                identity_token=_s(entry, "identitytoken"),
                registry_token=_s(entry, "registrytoken"),
            )
            return None if creds.empty else creds
        return None

    def store(self, registry: str, creds: Credentials) -> None:
        doc = self._load()
        helper = self._helper(doc, registry)
        key = config_key(registry)
        auths = doc.setdefault("auths", {})
        if not isinstance(auths, dict):
            auths = doc["auths"] = {}
        for other in [k for k in auths if normalize_server(str(k)) == normalize_server(key)]:
            del auths[other]
        if helper:
            user, secret = creds.username, creds.password
            if creds.identity_token:
                user, secret = TOKEN_USER, creds.identity_token
            payload = {"ServerURL": key, "Username": user, "Secret": secret}
            self._run_helper(helper, "store", json.dumps(payload))
            auths[key] = {}
        else:
            entry: dict[str, str] = {}
            if creds.identity_token:
                entry["identitytoken"] = creds.identity_token
                entry["auth"] = _join_auth(creds.username, "")
            else:
                entry["auth"] = _join_auth(creds.username, creds.password)
            auths[key] = entry
        self._save(doc)

    def erase(self, registry: str) -> bool:
        """Forget a registry's credentials; False if none were stored."""
        doc = self._load()
        helper = self._helper(doc, registry)
        key = config_key(registry)
        auths = doc.get("auths")
        found = False
        if isinstance(auths, dict):
            for other in [k for k in auths if normalize_server(str(k)) == normalize_server(key)]:
                del auths[other]
                found = True
        if helper:
            with contextlib.suppress(CredentialHelperError):
                self._run_helper(helper, "erase", key)
                found = True
        if found:
            self._save(doc)
        return found

    def _save(self, doc: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent="\t")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.rename(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _helper_get(self, helper: str, key: str) -> Credentials | None:
        try:
            out = self._run_helper(helper, "get", key)
        except CredentialHelperError as e:
            if "credentials not found" in str(e).lower():
                return None
            raise
        try:
            doc = json.loads(out)
        except ValueError:
            raise CredentialHelperError(
                f"docker-credential-{helper}: invalid JSON from get"
            ) from None
        if not isinstance(doc, dict):
            return None
        user, secret = _s(doc, "Username"), _s(doc, "Secret")
        if user == TOKEN_USER:
            return Credentials(identity_token=secret)
        creds = Credentials(username=user, password=secret)
        return None if creds.empty else creds

    def _run_helper(self, helper: str, action: str, stdin: str) -> str:
        program = self._helper_prefix + helper
        try:
            proc = subprocess.run(
                [program, action],
                input=stdin.encode(),
                capture_output=True,
                timeout=60,
                check=False,
            )
        except FileNotFoundError:
            raise CredentialHelperError(
                f'error getting credentials - err: exec: "{program}": executable file not found '
                "in $PATH"
            ) from None
        except subprocess.TimeoutExpired:
            raise CredentialHelperError(f"{program} {action}: timed out") from None
        if proc.returncode != 0:
            message = (proc.stdout or proc.stderr).decode(errors="replace").strip()
            raise CredentialHelperError(f"{program} {action}: {message}")
        return proc.stdout.decode()


def _s(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    return value if isinstance(value, str) else ""


def _split_auth(auth: str) -> tuple[str, str]:
    try:
        raw = base64.b64decode(auth + "=" * (-len(auth) % 4)).decode()
    except (binascii.Error, ValueError):
        raise InvalidArgument("invalid auth configuration: auth is not base64") from None
    user, sep, password = raw.partition(":")
    if not sep:
        raise InvalidArgument("invalid auth configuration: auth has no ':'")
    return user, password


def _join_auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()
