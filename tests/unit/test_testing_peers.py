from __future__ import annotations

import hashlib
import io
import json
import tarfile

from skiff.testing.peers import shim_socket_for, write_oci_archive


def test_shim_socket_is_named_like_containerd_names_it() -> None:
    argv = ["/usr/bin/containerd-shim-runc-v2", "-namespace", "ns", "-id", "c1", "-debug",
            "-address", "/tmp/sk-x/c.sock"]  # fmt: skip
    digest = hashlib.sha256(b"/tmp/sk-x/c.sock/ns/c1").hexdigest()
    assert shim_socket_for(argv) == f"/run/containerd/s/{digest}"
    assert shim_socket_for(["/usr/bin/sleep", "-id", "c1"]) is None
    assert shim_socket_for(["/usr/bin/containerd-shim-runc-v2", "delete"]) is None


def test_oci_archive_names_its_image(tmp_path: object) -> None:
    path = f"{tmp_path}/image.tar"
    write_oci_archive(b"layer bytes", path, "docker.io/library/x:y")
    with tarfile.open(path) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        top = index["manifests"][0]
        assert top["annotations"]["io.containerd.image.name"] == "docker.io/library/x:y"
        blob = tar.extractfile("blobs/sha256/" + top["digest"].removeprefix("sha256:"))
        assert blob is not None
        manifest = json.load(io.BytesIO(blob.read()))
        layer = manifest["layers"][0]["digest"]
        assert layer == "sha256:" + hashlib.sha256(b"layer bytes").hexdigest()
