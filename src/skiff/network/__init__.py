"""Container networking: bridges, veth pairs, IPAM, published ports and the embedded DNS.

The container service uses one object, built once by the daemon::

    mgr = NetworkManager(NetworkConfig(state_dir=f"{root}/network"))
    mgr.restore()                     # on every daemon start: default network, bridges,
                                      # rules, port reservations, DNS listeners
    net = mgr.create_network("app", subnet="", internal=False, labels={})  # "" chooses
    ep = mgr.connect("app", cid, f"/proc/{pid}/ns/net", name="web", aliases=["www"],
                     ip="", ports=parse_port_spec("8080:80"))   # -> Endpoint
    mgr.resolv_conf(cid), mgr.hosts(cid, hostname)               # the container's files
    mgr.ports(cid)                                               # bound host ports
    mgr.disconnect("app", cid) / mgr.disconnect_all(cid)
    mgr.remove_network("app"); mgr.prune()
    mgr.close()                       # daemon shutdown: the network stays up
    mgr.destroy()                     # remove everything skiff made (tests, uninstall)

Everything blocks (netlink, iptables); from asyncio call it in a worker thread.
Errors are skiff.errors categories with dockerd's wording: an overlapping subnet is
Forbidden("Pool overlaps with other one on this address space"), a taken host port
Conflict("Bind for 0.0.0.0:8080 failed: port is already allocated"), removing a network
in use Conflict("... has active endpoints"), an unknown one NotFound.

Modules, lowest first:

    ipam.py        subnets, gateways, addresses (pure)
    ports.py       -p specs (pure) and host port reservation
    resolvconf.py  resolv.conf and hosts contents (pure)
    dns.py         DNS codec (pure) and the embedded server (127.0.0.11)
    firewall.py    skiff's iptables chains, rendered (pure) and applied
    links.py       bridge and veth over netlink (pyroute2), behind the `Links` seam
    state.py       the persisted state (one JSON file, atomic writes)
    manager.py     NetworkManager: the above kept in step

Choices, and why:

- Published ports use DNAT in skiff's nat chain from PREROUTING and OUTPUT, with
  `route_localnet=1` on each bridge and a MASQUERADE of 127.0.0.0/8 into it, so
  127.0.0.1:PORT works without a userland proxy (dockerd's `--userland-proxy=false`).
  No process per port keeps containers cheap and starts fast; skiffd still binds each
  host port (without listening) so no host process can take it and a port already in
  use is refused before anything is set up.
- The embedded DNS listens *inside* each container's netns: skiffd creates a UDP and a
  TCP socket there from a thread that joined the netns (a socket keeps its netns), and a
  DNAT rule in the container's own nat table sends 127.0.0.11:53 to them, as dockerd
  does. Forwarded queries leave from the host's netns, so the host's resolvers work as
  they are, loopback ones included. After a daemon restart the same ports are re-bound.
"""

from skiff.network.manager import DEFAULT_NETWORK, NetworkConfig, NetworkManager
from skiff.network.ports import PortBinding, parse_port_spec
from skiff.network.state import Endpoint, Network

__all__ = [
    "DEFAULT_NETWORK",
    "Endpoint",
    "Network",
    "NetworkConfig",
    "NetworkManager",
    "PortBinding",
    "parse_port_spec",
]
