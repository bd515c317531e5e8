"""The local image store: manifests, configs, unpacking, import, save/load, layouts.

types      Manifest, Index, ConfigDoc: parsed once from untrusted JSON
unpack     chain ids; layers -> committed snapshots
ingest     one image-making operation under a lease (crash safe)
changes    `--change` Dockerfile lines applied to a config
busybox    a busybox rootfs from the host's busybox-static
archive    docker-archive load/save
layout     OCI image layout import/export
service    ImageService, the ImageBackend implementation
"""
