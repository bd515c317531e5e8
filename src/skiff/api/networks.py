"""Docker's /networks routes over the NetworkManager and the containers' network hook.

`host` and `none` are listed as dockerd lists them (drivers host and null); they are modes,
not managed networks, and cannot be created, removed or connected to.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from aiohttp import web

from skiff.api.app import json_response
from skiff.api.query import query_filters
from skiff.api.registry import Route
from skiff.errors import Forbidden, InvalidArgument, NotFound
from skiff.network.manager import NetworkManager
from skiff.network.state import Network
from skiff.services.container_network import ContainerNetworking
from skiff.services.containers import ContainerService
from skiff.services.events import Event

PSEUDO = {"host": "host", "none": "null"}
FILTER_KEYS = frozenset({"dangling", "driver", "id", "label", "name", "scope", "type"})


def _pseudo_id(name: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}/{name}".encode()).hexdigest()


def _labels_match(labels: dict[str, str], specs: list[str]) -> bool:
    for spec in specs:
        key, eq, value = spec.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


class NetworksApi:
    def __init__(
        self, manager: NetworkManager, hook: ContainerNetworking, containers: ContainerService
    ) -> None:
        self.mgr = manager
        self.hook = hook
        self.svc = containers
        self.salt = manager.config.state_dir

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/networks", self.list),
            Route("POST", "/networks/create", self.create),
            Route("POST", "/networks/prune", self.prune),
            Route("GET", "/networks/{id}", self.inspect),
            Route("DELETE", "/networks/{id}", self.remove),
            Route("POST", "/networks/{id}/connect", self.connect),
            Route("POST", "/networks/{id}/disconnect", self.disconnect),
        ]

    # --- wire shapes

    def to_wire(self, net: Network, containers: bool = True) -> dict[str, Any]:
        ipam: dict[str, str] = {"Subnet": net.subnet, "Gateway": net.gateway}
        if net.ip_range:
            ipam["IPRange"] = net.ip_range
        options = dict(net.options)
        if net.default:
            options = {
                "com.docker.network.bridge.default_bridge": "true",
                "com.docker.network.bridge.enable_icc": "true",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
                "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                "com.docker.network.bridge.name": net.bridge,
                "com.docker.network.driver.mtu": str(self.mgr.config.mtu),
                **options,
            }
        return {
            "Name": net.name,
            "Id": net.id,
            "Created": net.created,
            "Scope": "local",
            "Driver": "bridge",
            "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": [ipam]},
            "Internal": net.internal,
            "Attachable": False,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": self.hook.network_containers(net) if containers else {},
            "Options": options,
            "Labels": dict(net.labels),
        }

    def pseudo_wire(self, name: str) -> dict[str, Any]:
        return {
            "Name": name,
            "Id": _pseudo_id(name, self.salt),
            "Created": "0001-01-01T00:00:00Z",
            "Scope": "local",
            "Driver": PSEUDO[name],
            "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": []},
            "Internal": False,
            "Attachable": False,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": {},
            "Options": {},
            "Labels": {},
        }

    def _all(self) -> list[dict[str, Any]]:
        items = [self.to_wire(n, containers=False) for n in self.mgr.networks()]
        return items + [self.pseudo_wire(n) for n in PSEUDO]

    def _find_pseudo(self, ref: str) -> str:
        for name in PSEUDO:
            if ref == name or (len(ref) >= 1 and _pseudo_id(name, self.salt).startswith(ref)):
                return name
        return ""

    # --- handlers

    async def list(self, request: web.Request) -> web.StreamResponse:
        filters = query_filters(request.query)
        for key in filters:
            if key not in FILTER_KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
        used = {e.network_id for e in self.mgr.endpoints()}
        out = []
        for n in self._all():
            builtin = n["Name"] in ("bridge", "host", "none") and (
                n["Name"] != "bridge"
                or n["Options"].get("com.docker.network.bridge.default_bridge")
            )
            f = filters
            if f.get("name") and not any(v in n["Name"] for v in f["name"]):
                continue
            if f.get("id") and not any(n["Id"].startswith(v) for v in f["id"]):
                continue
            if f.get("driver") and n["Driver"] not in f["driver"]:
                continue
            if f.get("scope") and "local" not in f["scope"]:
                continue
            if f.get("type") and ("builtin" if builtin else "custom") not in f["type"]:
                continue
            if f.get("label") and not _labels_match(n["Labels"], f["label"]):
                continue
            if f.get("dangling"):
                dangling = not builtin and n["Id"] not in used
                if str(dangling).lower() not in [v.lower() for v in f["dangling"]] and not (
                    dangling and "1" in f["dangling"]
                ):
                    continue
            out.append(n)
        return json_response(out)

    async def inspect(self, request: web.Request) -> web.StreamResponse:
        ref = request.match_info["id"]
        try:
            net = self.mgr.network(ref)
        except NotFound:
            name = self._find_pseudo(ref)
            if not name:
                raise
            return json_response(self.pseudo_wire(name))
        return json_response(self.to_wire(net))

    async def create(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json(loads=json.loads)
        except ValueError as e:
            raise InvalidArgument(f"invalid JSON: {e}") from None
        if not isinstance(body, dict):
            raise InvalidArgument("invalid network config")
        name = str(body.get("Name") or "")
        if not name:
            raise InvalidArgument("network name must not be empty")
        driver = str(body.get("Driver") or "bridge")
        if name in PSEUDO:
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found')
        ipam = body.get("IPAM") or {}
        configs = [c for c in ipam.get("Config") or [] if ":" not in str(c.get("Subnet") or "")]
        cfg = configs[0] if configs else {}
        net = await asyncio.to_thread(
            self.mgr.create_network,
            name,
            subnet=str(cfg.get("Subnet") or ""),
            gateway=str(cfg.get("Gateway") or ""),
            ip_range=str(cfg.get("IPRange") or ""),
            internal=bool(body.get("Internal")),
            labels={str(k): str(v) for k, v in (body.get("Labels") or {}).items()},
            options={str(k): str(v) for k, v in (body.get("Options") or {}).items()},
        )
        self._event("create", net)
        return json_response({"Id": net.id, "Warning": ""}, 201)

    async def remove(self, request: web.Request) -> web.StreamResponse:
        ref = request.match_info["id"]
        if self._find_pseudo(ref) and ref in PSEUDO:
            raise Forbidden(f"{ref} is a pre-defined network and cannot be removed")
        net = self.mgr.network(ref)
        await asyncio.to_thread(self.mgr.remove_network, net.id)
        self._event("destroy", net)
        return web.Response(status=204)

    async def prune(self, request: web.Request) -> web.StreamResponse:
        filters = query_filters(request.query)
        labels = filters.get("label", [])
        wanted = [
            n
            for n in self.mgr.networks()
            if not n.default
            and _labels_match(n.labels, labels)
            and not self.mgr.endpoints(network=n.id)
            and not any(n.name in c.networks for c in self.svc.list(all=True))
        ]
        removed = []
        for n in wanted:
            try:
                await asyncio.to_thread(self.mgr.remove_network, n.id)
            except (NotFound, Forbidden):
                continue
            except Exception:
                continue
            removed.append(n.name)
            self._event("destroy", n)
        return json_response({"NetworksDeleted": removed})

    async def connect(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        c = self.svc.get(str(body.get("Container") or ""))
        ref = request.match_info["id"]
        if ref in PSEUDO or self._find_pseudo(ref) == ref:
            raise Forbidden(
                "container cannot be disconnected from host network or connected to host network"
            )
        net = self.mgr.network(ref)
        cfg = body.get("EndpointConfig") or {}
        async with self.svc.lock(c):
            await asyncio.to_thread(self.hook.connect, c, net.id, cfg)
            self.svc.save(c)
        self._event("connect", net, container=c.id)
        return web.Response(status=200)

    async def disconnect(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        c = self.svc.get(str(body.get("Container") or ""))
        ref = request.match_info["id"]
        async with self.svc.lock(c):
            await asyncio.to_thread(self.hook.disconnect, c, ref, bool(body.get("Force")))
            self.svc.save(c)
        try:
            self._event("disconnect", self.mgr.network(ref), container=c.id)
        except NotFound:
            pass
        return web.Response(status=200)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json(loads=json.loads)
        except ValueError as e:
            raise InvalidArgument(f"invalid JSON: {e}") from None
        if not isinstance(body, dict):
            raise InvalidArgument("invalid request body")
        return body

    def _event(self, action: str, net: Network, **extra: str) -> None:
        publish = self.svc._publish
        if publish is not None:
            publish(
                Event(
                    "network",
                    action,
                    actor_id=net.id,
                    attributes={"name": net.name, "type": "bridge", **extra},
                )
            )
