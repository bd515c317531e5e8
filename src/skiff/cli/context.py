"""What every command gets: the global options and a client made on first use."""

from __future__ import annotations

import os

from skiff.hosts import DEFAULT_EXEC_ROOT, Host, parse_host

TYPE_CHECKING = False
if TYPE_CHECKING:
    from skiff.client import Client, TlsConfig


SOCKET_NAME = "skiff.sock"


def default_exec_root() -> str:
    return os.environ.get("SKIFF_EXEC_ROOT") or DEFAULT_EXEC_ROOT


def default_host() -> str:
    return "unix://" + os.path.join(default_exec_root(), SOCKET_NAME)


class GlobalOptions:
    # Plain classes, not dataclasses: see skiff.client.client on start-up time.
    def __init__(self) -> None:
        self.host: str | None = None  # -H; None: $SKIFF_HOST or the default socket
        self.tls = False
        self.tlsverify = False
        self.tlscacert: str | None = None
        self.tlscert: str | None = None
        self.tlskey: str | None = None
        self.debug = False


def _cert_dir() -> str:
    return os.environ.get("SKIFF_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".skiff")


class CliContext:
    def __init__(self, options: GlobalOptions | None = None) -> None:
        self.options = options or GlobalOptions()
        self._client: Client | None = None

    @property
    def explicit_host(self) -> bool:
        return bool(self.options.host or os.environ.get("SKIFF_HOST"))

    def host(self) -> Host:
        return parse_host(self.options.host or os.environ.get("SKIFF_HOST") or default_host())

    def tls(self) -> TlsConfig | None:
        opts = self.options
        verify = opts.tlsverify or os.environ.get("SKIFF_TLS_VERIFY", "") not in ("", "0")
        if not (verify or opts.tls):
            return None
        certs = _cert_dir()

        def pick(given: str | None, name: str) -> str | None:
            if given:
                return given
            path = os.path.join(certs, name)
            return path if os.path.exists(path) else None

        from skiff.client import TlsConfig

        return TlsConfig(
            ca=pick(opts.tlscacert, "ca.pem"),
            cert=pick(opts.tlscert, "cert.pem"),
            key=pick(opts.tlskey, "key.pem"),
            verify=verify,
        )

    def client(self) -> Client:
        """The client; if nothing answers on the default socket, start skiffd first."""
        if self._client is None:
            from skiff.client import Client

            client = Client(self.host(), self.tls())
            if not self.explicit_host and client.host.scheme == "unix":
                from skiff.cli.autostart import ensure_daemon

                ensure_daemon(client, default_exec_root())
            self._client = client
        return self._client
