"""Client calls for /networks and a container's port bindings, over `Client`.

nets = Networks(ctx.client())
nets.create("front", subnet="10.5.0.0/24")
"""

from __future__ import annotations

import json

from skiff.client.client import Client, encode_filters

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from skiff.client.client import QueryValue

_JSON = {"Content-Type": "application/json"}


class Networks:
    def __init__(self, client: Client) -> None:
        self.client = client

    def create(
        self,
        name: str,
        driver: str = "bridge",
        subnet: str = "",
        gateway: str = "",
        ip_range: str = "",
        internal: bool = False,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        config = {
            k: v for k, v in (("Subnet", subnet), ("Gateway", gateway), ("IPRange", ip_range)) if v
        }
        body = {
            "Name": name,
            "Driver": driver or "bridge",
            "Internal": internal,
            "IPAM": {"Driver": "default", "Config": [config] if config else []},
            "Labels": dict(labels or {}),
            "Options": dict(options or {}),
        }
        result: dict[str, Any] = self.client.request(
            "POST", "/networks/create", body=json.dumps(body).encode(), headers=_JSON
        ).json()
        return result

    def networks(self, filters: Mapping[str, list[str]] | None = None) -> list[dict[str, Any]]:
        query: dict[str, QueryValue] = {}
        if filters:
            query["filters"] = encode_filters(filters)
        return list(self.client.get_json("/networks", query) or [])

    def inspect(self, ref: str) -> dict[str, Any]:
        result: dict[str, Any] = self.client.get_json(f"/networks/{ref}")
        return result

    def remove(self, ref: str) -> None:
        self.client.request("DELETE", f"/networks/{ref}")

    def prune(self, filters: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
        query: dict[str, QueryValue] = {}
        if filters:
            query["filters"] = encode_filters(filters)
        result: dict[str, Any] = self.client.request("POST", "/networks/prune", query).json()
        return result

    def connect(
        self, ref: str, container: str, aliases: list[str] | None = None, ip: str = ""
    ) -> None:
        endpoint: dict[str, Any] = {}
        if aliases:
            endpoint["Aliases"] = list(aliases)
        if ip:
            endpoint["IPAMConfig"] = {"IPv4Address": ip}
        body = {"Container": container, "EndpointConfig": endpoint}
        self.client.request(
            "POST", f"/networks/{ref}/connect", body=json.dumps(body).encode(), headers=_JSON
        )

    def disconnect(self, ref: str, container: str, force: bool = False) -> None:
        body = {"Container": container, "Force": force}
        self.client.request(
            "POST", f"/networks/{ref}/disconnect", body=json.dumps(body).encode(), headers=_JSON
        )

    def ports(self, container: str) -> dict[str, Any]:
        """The container's NetworkSettings.Ports: {"80/tcp": [{"HostIp", "HostPort"}] | None}."""
        info = self.client.get_json(f"/containers/{container}/json")
        return dict((info.get("NetworkSettings") or {}).get("Ports") or {})
