"""Registry failures, as skiff.errors categories with Docker's wording.

    HTTP from the registry         raised here                    API status
    401                            RegistryUnauthorized (Unauthorized)   401
    403                            RegistryDenied (Forbidden)            403
    404                            ManifestUnknown / BlobUnknown / RepositoryUnknown (NotFound) 404
    429, 5xx, connection failure   RegistryUnavailable (Unavailable)    503
    other 4xx                      RegistryError                         500
    wrong digest, truncated blob   VerificationFailed                    500
    manifest over 4 MiB            ManifestTooLarge (InvalidArgument)    400
    unknown media type             UnsupportedMediaType (Unsupported)    501

Every message names the image (or repository) and the cause, e.g.
"manifest for 127.0.0.1:5000/app:nope not found: manifest unknown: manifest unknown".
"""

from __future__ import annotations

import json

from skiff.errors import (
    Forbidden,
    InvalidArgument,
    NotFound,
    SkiffError,
    Unauthorized,
    Unavailable,
    Unsupported,
)


class RegistryError(SkiffError):
    """The registry answered with something we cannot use (500 at the API)."""


class RegistryUnauthorized(Unauthorized):
    pass


class RegistryDenied(Forbidden):
    pass


class RepositoryUnknown(NotFound):
    pass


class ManifestUnknown(NotFound):
    pass


class BlobUnknown(NotFound):
    pass


class RegistryUnavailable(Unavailable):
    """429, 5xx or no connection: worth retrying later; a retry continues."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class VerificationFailed(RegistryError):
    """Bytes from the registry did not match their digest or size; nothing was stored."""


class ManifestTooLarge(InvalidArgument):
    pass


class UnsupportedMediaType(Unsupported):
    pass


def describe(status: int, body: bytes) -> str:
    """The registry's own words: "manifest unknown: manifest unknown" from
    `{"errors": [{"code": "MANIFEST_UNKNOWN", "message": ...}]}`, else the status."""
    try:
        doc = json.loads(body[:65536])
        errors = doc.get("errors") if isinstance(doc, dict) else None
    except ValueError:
        errors = None
    if isinstance(errors, list) and errors:
        parts = []
        for e in errors:
            if not isinstance(e, dict):
                continue
            code = str(e.get("code", "")).lower().replace("_", " ")
            message = str(e.get("message", "")) or code
            parts.append(f"{code}: {message}" if code else message)
        if parts:
            return "; ".join(parts)
    reason = _REASONS.get(status, "")
    return f"received unexpected HTTP status: {status} {reason}".rstrip()


def error_codes(body: bytes) -> set[str]:
    try:
        doc = json.loads(body[:65536])
    except ValueError:
        return set()
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return set()
    return {str(e.get("code")) for e in errors if isinstance(e, dict)}


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    416: "Requested Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def from_response(
    status: int,
    body: bytes,
    what: str,
    *,
    action: str = "pull",
    retry_after: float | None = None,
) -> SkiffError:
    """The error for a failed request about `what` ("manifest for busybox:latest",
    "blob sha256:... of busybox", "repository busybox")."""
    cause = describe(status, body)
    codes = error_codes(body)
    if status == 401:
        if action == "push":
            return RegistryUnauthorized(f"{what}: {cause}")
        return RegistryUnauthorized(
            f"{action} access denied for {what}, repository does not exist or may require "
            f"'docker login': {cause}"
        )
    if status == 403:
        return RegistryDenied(f"{action} access denied for {what}: {cause}")
    if status == 404:
        if "NAME_UNKNOWN" in codes:
            return RepositoryUnknown(f"repository for {what} not found: {cause}")
        if "BLOB_UNKNOWN" in codes or what.startswith("blob"):
            return BlobUnknown(f"{what} not found: {cause}")
        return ManifestUnknown(f"{what} not found: {cause}")
    if status == 429 or status >= 500:
        return RegistryUnavailable(f"{what}: {cause}", retry_after)
    return RegistryError(f"{what}: {cause}")
