"""Client calls for volumes, exec, top, stats, cp, export, diff, commit, update and
container prune: a thin wrapper over `Client`, kept apart from the core's calls.

    extras = Extras(ctx.client())
    extras.create_volume("data", labels={"a": "b"})
"""

from __future__ import annotations

import json

from skiff.client.client import Client, encode_filters

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any, BinaryIO

    from skiff.client.client import QueryValue


class Extras:
    def __init__(self, client: Client) -> None:
        self.client = client

    # -- volumes ------------------------------------------------------------------------

    def create_volume(
        self,
        name: str = "",
        driver: str = "",
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        body = {
            "Name": name,
            "Driver": driver or "local",
            "DriverOpts": dict(options or {}),
            "Labels": dict(labels or {}),
        }
        headers = {"Content-Type": "application/json"}
        result: dict[str, Any] = self.client.request(
            "POST", "/volumes/create", body=json.dumps(body).encode(), headers=headers
        ).json()
        return result

    def volumes(self, filters: Mapping[str, list[str]] | None = None) -> list[dict[str, Any]]:
        query: dict[str, QueryValue] = {}
        if filters:
            query["filters"] = encode_filters(filters)
        result = self.client.get_json("/volumes", query) or {}
        return list(result.get("Volumes") or [])

    def inspect_volume(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.client.get_json(f"/volumes/{name}")
        return result

    def remove_volume(self, name: str, force: bool = False) -> None:
        self.client.request("DELETE", f"/volumes/{name}", {"force": force or None})

    def prune_volumes(self, filters: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
        query: dict[str, QueryValue] = {}
        if filters:
            query["filters"] = encode_filters(filters)
        result: dict[str, Any] = self.client.request("POST", "/volumes/prune", query).json()
        return result

    # -- containers: read ---------------------------------------------------------------

    def top(self, container: str, ps_args: str = "") -> dict[str, Any]:
        result: dict[str, Any] = self.client.get_json(
            f"/containers/{container}/top", {"ps_args": ps_args or None}
        )
        return result

    def stats(self, container: str, stream: bool = False) -> Iterator[dict[str, Any]]:
        query: dict[str, QueryValue] = {"stream": stream}
        if not stream:
            yield self.client.get_json(f"/containers/{container}/stats", query)
            return
        yield from self.client.stream_json("GET", f"/containers/{container}/stats", query)

    def changes(self, container: str) -> list[dict[str, Any]]:
        result = self.client.get_json(f"/containers/{container}/changes")
        return list(result or [])

    def export(self, container: str) -> Iterator[bytes]:
        return self.client.stream_raw("GET", f"/containers/{container}/export")

    def stat_path(self, container: str, path: str) -> dict[str, Any]:
        import base64

        response = self.client.request("HEAD", f"/containers/{container}/archive", {"path": path})
        header = response.headers.get("X-Docker-Container-Path-Stat", "")
        return dict(json.loads(base64.b64decode(header))) if header else {}

    def get_archive(self, container: str, path: str) -> Iterator[bytes]:
        return self.client.stream_raw("GET", f"/containers/{container}/archive", {"path": path})

    def put_archive(
        self,
        container: str,
        path: str,
        tar: bytes | BinaryIO,
        no_overwrite_dir_non_dir: bool = False,
        copy_uid_gid: bool = False,
    ) -> None:
        query: dict[str, QueryValue] = {
            "path": path,
            "noOverwriteDirNonDir": no_overwrite_dir_non_dir or None,
            "copyUIDGID": copy_uid_gid or None,
        }
        headers = {"Content-Type": "application/x-tar"}
        self.client.request("PUT", f"/containers/{container}/archive", query, tar, headers)

    # -- containers: write ---------------------------------------------------------------

    def commit(
        self,
        container: str,
        repo: str = "",
        tag: str = "",
        comment: str = "",
        author: str = "",
        pause: bool = True,
        changes: list[str] | None = None,
    ) -> dict[str, Any]:
        query: dict[str, QueryValue] = {
            "container": container,
            "repo": repo or None,
            "tag": tag or None,
            "comment": comment or None,
            "author": author or None,
            "pause": pause,
            "changes": changes or None,
        }
        headers = {"Content-Type": "application/json"}
        result: dict[str, Any] = self.client.request(
            "POST", "/commit", query, b"{}", headers
        ).json()
        return result

    def update(self, container: str, body: Mapping[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        result: dict[str, Any] = self.client.request(
            "POST", f"/containers/{container}/update", None, json.dumps(body).encode(), headers
        ).json()
        return result

    def prune_containers(self, filters: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
        query: dict[str, QueryValue] = {}
        if filters:
            query["filters"] = encode_filters(filters)
        result: dict[str, Any] = self.client.request("POST", "/containers/prune", query).json()
        return result

    # -- exec ------------------------------------------------------------------------------

    def exec_create(self, container: str, config: Mapping[str, Any]) -> str:
        headers = {"Content-Type": "application/json"}
        result = self.client.request(
            "POST", f"/containers/{container}/exec", None, json.dumps(config).encode(), headers
        ).json()
        return str(result["Id"])

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.client.get_json(f"/exec/{exec_id}/json")
        return result

    def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        self.client.request("POST", f"/exec/{exec_id}/resize", {"h": height, "w": width})
