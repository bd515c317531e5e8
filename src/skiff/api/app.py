"""The aiohttp application: every route behind one wrapper.

The wrapper (a middleware) gives each request an id for the logs, checks the `/v1.NN`
prefix against the versions skiffd speaks, turns raised errors into Docker's
`{"message": ...}` with the status from errors.STATUS_BY_CATEGORY, and never shows a
traceback to the client. Version headers are added to every response, streamed ones too,
by an on_response_prepare hook.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from skiff.api.errors import INTERNAL, status_for
from skiff.api.registry import ApiRegistry, Handler
from skiff.errors import InvalidArgument, SkiffError
from skiff.version import API_VERSION, MIN_API_VERSION, __version__, parse_api_version

log = logging.getLogger("skiff.api")

VERSION_PREFIX = "/v{api_version:[0-9][0-9.]*}"
REQUEST_ID: web.AppKey[Iterator[int]] = web.AppKey("skiff_request_ids")
REQUEST_ID_KEY = web.RequestKey("skiff_request_id", int)
API_VERSION_KEY = web.RequestKey("skiff_api_version", tuple)

_MAX = parse_api_version(API_VERSION)
_MIN = parse_api_version(MIN_API_VERSION)

SERVER_HEADERS = {
    "Api-Version": API_VERSION,
    "Server": f"skiff/{__version__} (linux)",
    "Ostype": "linux",
    "Docker-Experimental": "false",
}


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode() + b"\n",
        status=status,
        content_type="application/json",
    )


def error_response(status: int, message: str) -> web.Response:
    if status == 304:
        return web.Response(status=304)  # a 304 has no body
    return json_response({"message": message}, status)


def request_api_version(request: web.Request) -> tuple[int, int]:
    """The version the client asked for in its path prefix, or the server's."""
    version: tuple[int, int] = request.get(API_VERSION_KEY, _MAX)
    return version


def _check_version(text: str) -> tuple[int, int]:
    try:
        version = parse_api_version(text)
    except ValueError:
        raise InvalidArgument(f"invalid API version: {text}") from None
    if version > _MAX:
        raise InvalidArgument(
            f"client version {text} is too new. Maximum supported API version is {API_VERSION}"
        )
    if version < _MIN:
        raise InvalidArgument(
            f"client version {text} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    return version


@web.middleware
async def wrapper(request: web.Request, handler: Handler) -> web.StreamResponse:
    counter: Iterator[int] = request.app[REQUEST_ID]
    request_id = next(counter)
    request[REQUEST_ID_KEY] = request_id
    started = time.monotonic()
    status = INTERNAL
    try:
        requested = request.match_info.get("api_version")
        if requested is not None:
            request[API_VERSION_KEY] = _check_version(requested)
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        # From aiohttp's router (no such route, wrong method) or a handler's redirect.
        status = exc.status
        if status in (404, 405):
            status = 404  # moby answers a wrong method like an unknown path
            return error_response(404, "page not found")
        if status < 400:
            raise
        return error_response(status, exc.text or exc.reason)
    except SkiffError as exc:
        status = status_for(exc)
        return error_response(status, str(exc))
    except ConnectionResetError:
        status = 499  # the client left; nobody to answer
        raise
    except Exception:
        log.exception(
            "handler failed",
            extra={"request_id": request_id, "method": request.method, "path": request.path},
        )
        return error_response(INTERNAL, "internal server error")
    finally:
        log.debug(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": request.path_qs,
                "status": status,
                "ms": round((time.monotonic() - started) * 1000, 2),
            },
        )


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SERVER_HEADERS)


def build_app(registry: ApiRegistry) -> web.Application:
    app = web.Application(middlewares=[wrapper], client_max_size=0)
    app[REQUEST_ID] = itertools.count(1)
    app.on_response_prepare.append(_add_headers)
    for route in registry.routes:
        app.router.add_route(route.method, route.path, route.handler)
        app.router.add_route(route.method, VERSION_PREFIX + route.path, route.handler)
    return app
