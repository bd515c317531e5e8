from __future__ import annotations

import hashlib
import pickle

import pytest

from skiff.errors import InvalidArgument
from skiff.oci import mediatypes as mt
from skiff.oci.descriptor import Descriptor
from skiff.oci.digest import Digest, InvalidDigest

HEX = hashlib.sha256(b"x").hexdigest()


def test_parse_round_trip() -> None:
    d = Digest.parse(f"sha256:{HEX}")
    assert str(d) == f"sha256:{HEX}"
    assert d.hex == HEX
    assert d.short() == HEX[:12]
    assert d == Digest.from_bytes(b"x")
    assert hash(d) == hash(Digest("sha256", HEX))
    assert pickle.loads(pickle.dumps(d)) == d


def test_sha512() -> None:
    h = hashlib.sha512(b"x").hexdigest()
    assert Digest.parse(f"sha512:{h}") == Digest.from_bytes(b"x", "sha512")


@pytest.mark.parametrize(
    "text",
    [
        "",
        HEX,
        f"sha256:{HEX.upper()}",
        f"sha256:{HEX[:-1]}",
        f"sha256:{HEX}0",
        f"md5:{HEX}",
        f"blake3:{HEX}",
        f"sha512:{HEX}",
        f"sha256:{HEX[:-1]}g",
        f" sha256:{HEX}",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidDigest):
        Digest.parse(text)


def test_invalid_digest_is_invalid_argument() -> None:
    assert issubclass(InvalidDigest, InvalidArgument)


def test_immutable() -> None:
    d = Digest.from_bytes(b"")
    with pytest.raises(AttributeError):
        d.encoded = "0"  # type: ignore[misc]


def test_media_type_questions() -> None:
    assert mt.is_manifest(mt.DOCKER_MANIFEST)
    assert mt.is_manifest(mt.OCI_MANIFEST)
    assert mt.is_index(mt.DOCKER_MANIFEST_LIST)
    assert mt.is_index(mt.OCI_INDEX)
    assert mt.is_config(mt.DOCKER_CONFIG)
    assert mt.layer_compression(mt.DOCKER_LAYER_GZIP) == "gzip"
    assert mt.layer_compression(mt.OCI_LAYER_ZSTD) == "zstd"
    assert mt.layer_compression(mt.DOCKER_LAYER_FOREIGN) == ""
    assert mt.layer_compression(mt.OCI_CONFIG) is None
    assert mt.layer_media_type("gzip", docker=True) == mt.DOCKER_LAYER_GZIP
    assert mt.layer_media_type("") == mt.OCI_LAYER


def test_descriptor_round_trip_and_errors() -> None:
    obj = {"mediaType": mt.OCI_CONFIG, "digest": f"sha256:{HEX}", "size": 3}
    desc = Descriptor.from_json(obj)
    assert desc.to_json() == obj
    with pytest.raises(InvalidArgument, match=r"layers\[0\]\.size"):
        Descriptor.from_json({**obj, "size": -1}, "layers[0]")
    with pytest.raises(InvalidArgument, match=r"config\.digest"):
        Descriptor.from_json({**obj, "digest": "sha256:zz"}, "config")
