"""Image manifests, indexes and configs, parsed once from untrusted JSON.

Both OCI (application/vnd.oci.image.*) and Docker schema2
(application/vnd.docker.distribution.manifest.v2+json, ...list.v2+json) are read;
skiff writes OCI. A config keeps its raw JSON (the image id is the digest of its
exact bytes, and fields skiff does not know must survive a save) beside the typed
view the services use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from skiff.errors import InvalidArgument
from skiff.oci import mediatypes as mt
from skiff.oci.descriptor import Descriptor
from skiff.oci.digest import Digest, InvalidDigest
from skiff.oci.image import ImageConfig
from skiff.oci.platform import Platform

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"{what}: invalid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{what}: expected a JSON object")
    return obj


def dumps(obj: object) -> bytes:
    """Compact JSON, as the blobs skiff writes are stored."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes, media_type: str | None = None) -> Manifest:
        obj = _load(data, "manifest")
        declared = obj.get("mediaType")
        kind = declared if isinstance(declared, str) and declared else media_type
        if (
            kind in (mt.DOCKER_MANIFEST_V1, mt.DOCKER_MANIFEST_V1_SIGNED)
            or obj.get("schemaVersion") == 1
        ):
            raise InvalidArgument("Docker image manifest schema 1 is not supported")
        if kind is None:
            kind = mt.OCI_MANIFEST
        if not mt.is_manifest(kind):
            raise InvalidArgument(f"manifest: unsupported media type {kind!r}")
        if obj.get("schemaVersion") != 2:
            raise InvalidArgument("manifest: schemaVersion must be 2")
        config = Descriptor.from_json(obj.get("config"), "manifest.config")
        raw_layers = obj.get("layers")
        if not isinstance(raw_layers, list):
            raise InvalidArgument("manifest.layers: expected an array")
        layers = tuple(
            Descriptor.from_json(la, f"manifest.layers[{i}]") for i, la in enumerate(raw_layers)
        )
        for i, layer in enumerate(layers):
            if mt.layer_compression(layer.media_type) is None:
                raise InvalidArgument(
                    f"manifest.layers[{i}]: unsupported layer media type {layer.media_type!r}"
                )
        annotations = obj.get("annotations") or {}
        return cls(kind, config, layers, dict(annotations) if isinstance(annotations, dict) else {})

    def to_json(self) -> bytes:
        obj: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [la.to_json() for la in self.layers],
        }
        if self.annotations:
            obj["annotations"] = self.annotations
        return dumps(obj)

    def as_oci(self) -> Manifest:
        """The same content under OCI media types (umoci reads only those)."""
        if self.media_type == mt.OCI_MANIFEST:
            return self
        layers = []
        for la in self.layers:
            compression = mt.layer_compression(la.media_type) or ""
            layers.append(Descriptor(mt.layer_media_type(compression), la.digest, la.size, la.urls))
        config = Descriptor(mt.OCI_CONFIG, self.config.digest, self.config.size)
        return Manifest(mt.OCI_MANIFEST, config, tuple(layers), dict(self.annotations))


@dataclass(frozen=True)
class IndexEntry:
    descriptor: Descriptor
    platform: Platform | None


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[IndexEntry, ...]
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes, media_type: str | None = None) -> Index:
        obj = _load(data, "index")
        declared = obj.get("mediaType")
        kind = declared if isinstance(declared, str) and declared else (media_type or mt.OCI_INDEX)
        if not mt.is_index(kind):
            raise InvalidArgument(f"index: unsupported media type {kind!r}")
        raw = obj.get("manifests")
        if not isinstance(raw, list):
            raise InvalidArgument("index.manifests: expected an array")
        entries = []
        for i, item in enumerate(raw):
            desc = Descriptor.from_json(item, f"index.manifests[{i}]")
            plat = item.get("platform")
            platform = None
            if isinstance(plat, dict):
                platform = Platform(
                    str(plat.get("os", "")),
                    str(plat.get("architecture", "")),
                    str(plat.get("variant", "")),
                )
            entries.append(IndexEntry(desc, platform))
        annotations = obj.get("annotations") or {}
        return cls(kind, tuple(entries), dict(annotations) if isinstance(annotations, dict) else {})

    def to_json(self) -> bytes:
        manifests = []
        for entry in self.manifests:
            item = entry.descriptor.to_json()
            if entry.platform is not None:
                plat = {"architecture": entry.platform.architecture, "os": entry.platform.os}
                if entry.platform.variant:
                    plat["variant"] = entry.platform.variant
                item["platform"] = plat
            manifests.append(item)
        obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type}
        obj["manifests"] = manifests
        if self.annotations:
            obj["annotations"] = self.annotations
        return dumps(obj)


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{where}.{key}: expected a string")
    return value


def _str_list(obj: dict[str, Any], key: str, where: str) -> list[str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{where}.{key}: expected an array of strings")
    return list(value)


def _set(obj: dict[str, Any], key: str, where: str) -> dict[str, dict[str, object]]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}.{key}: expected an object")
    return {str(k): {} for k in value}


def parse_image_config(obj: object, where: str = "config.config") -> ImageConfig:
    if obj is None:
        return ImageConfig()
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{where}: expected an object")
    labels = obj.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidArgument(f"{where}.Labels: expected a string to string map")
    healthcheck = obj.get("Healthcheck")
    return ImageConfig(
        user=_str(obj, "User", where),
        exposed_ports=_set(obj, "ExposedPorts", where),
        env=_str_list(obj, "Env", where) or [],
        entrypoint=_str_list(obj, "Entrypoint", where),
        cmd=_str_list(obj, "Cmd", where),
        volumes=_set(obj, "Volumes", where),
        working_dir=_str(obj, "WorkingDir", where),
        labels={str(k): v for k, v in labels.items()},
        stop_signal=_str(obj, "StopSignal", where),
        on_build=_str_list(obj, "OnBuild", where) or [],
        healthcheck=dict(healthcheck) if isinstance(healthcheck, dict) else None,
        shell=_str_list(obj, "Shell", where),
        args_escaped=bool(obj.get("ArgsEscaped", False)),
    )


def image_config_json(c: ImageConfig) -> dict[str, Any]:
    """The `config` object as Docker writes it (CamelCase, unset fields left out)."""
    out: dict[str, Any] = {}
    if c.user:
        out["User"] = c.user
    if c.exposed_ports:
        out["ExposedPorts"] = {k: {} for k in c.exposed_ports}
    if c.env:
        out["Env"] = list(c.env)
    if c.entrypoint is not None:
        out["Entrypoint"] = list(c.entrypoint)
    if c.cmd is not None:
        out["Cmd"] = list(c.cmd)
    if c.volumes:
        out["Volumes"] = {k: {} for k in c.volumes}
    if c.working_dir:
        out["WorkingDir"] = c.working_dir
    if c.labels:
        out["Labels"] = dict(c.labels)
    if c.stop_signal:
        out["StopSignal"] = c.stop_signal
    if c.on_build:
        out["OnBuild"] = list(c.on_build)
    if c.healthcheck is not None:
        out["Healthcheck"] = dict(c.healthcheck)
    if c.shell is not None:
        out["Shell"] = list(c.shell)
    if c.args_escaped:
        out["ArgsEscaped"] = True
    return out


@dataclass(frozen=True)
class ConfigDoc:
    """An image config blob: the typed view plus the raw object it came from."""

    raw: dict[str, Any]
    architecture: str
    os: str
    variant: str
    os_version: str
    created: str
    author: str
    config: ImageConfig
    diff_ids: tuple[Digest, ...]
    history: tuple[dict[str, Any], ...]
    comment: str
    docker_version: str
    container: str
    parent: str

    @property
    def platform(self) -> Platform:
        return Platform(self.os or "linux", self.architecture, self.variant)

    @classmethod
    def parse(cls, data: bytes) -> ConfigDoc:
        obj = _load(data, "image config")
        rootfs = obj.get("rootfs")
        if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
            raise InvalidArgument('image config: rootfs.type must be "layers"')
        raw_ids = rootfs.get("diff_ids") or []
        if not isinstance(raw_ids, list):
            raise InvalidArgument("image config: rootfs.diff_ids: expected an array")
        try:
            diff_ids = tuple(Digest.parse(d) for d in raw_ids)
        except InvalidDigest as e:
            raise InvalidArgument(f"image config: rootfs.diff_ids: {e}") from None
        history = obj.get("history") or []
        if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
            raise InvalidArgument("image config: history: expected an array of objects")
        where = "image config"
        return cls(
            raw=obj,
            architecture=_str(obj, "architecture", where),
            os=_str(obj, "os", where),
            variant=_str(obj, "variant", where),
            os_version=_str(obj, "os.version", where),
            created=_str(obj, "created", where),
            author=_str(obj, "author", where),
            config=parse_image_config(obj.get("config")),
            diff_ids=diff_ids,
            history=tuple(history),
            comment=_str(obj, "comment", where),
            docker_version=_str(obj, "docker_version", where),
            container=_str(obj, "container", where),
            parent=_str(obj, "parent", where),
        )

    def non_empty_history(self) -> list[dict[str, Any]]:
        return [h for h in self.history if not h.get("empty_layer")]
