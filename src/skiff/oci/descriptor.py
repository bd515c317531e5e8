"""The OCI content descriptor: what a blob is, its digest and its size."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skiff.errors import InvalidArgument
from skiff.oci.digest import Digest, InvalidDigest


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        if self.size < 0:
            raise InvalidArgument(f"descriptor size must not be negative: {self.size}")

    @classmethod
    def from_json(cls, obj: object, where: str = "descriptor") -> Descriptor:
        """Parse an untrusted JSON object; errors name the field (`layers[2].digest`)."""
        if not isinstance(obj, dict):
            raise InvalidArgument(f"{where}: expected an object")
        media_type = obj.get("mediaType")
        if not isinstance(media_type, str) or not media_type:
            raise InvalidArgument(f"{where}.mediaType: expected a non-empty string")
        size = obj.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidArgument(f"{where}.size: expected a non-negative integer")
        try:
            digest = Digest.parse(obj.get("digest"))  # type: ignore[arg-type]
        except InvalidDigest as e:
            raise InvalidArgument(f"{where}.digest: {e}") from None
        urls = obj.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise InvalidArgument(f"{where}.urls: expected an array of strings")
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise InvalidArgument(f"{where}.annotations: expected a string to string map")
        artifact_type = obj.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise InvalidArgument(f"{where}.artifactType: expected a string")
        return cls(media_type, digest, size, tuple(urls), dict(annotations), artifact_type)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        return out
