"""Ask 127.0.0.11 for NAME's A records from inside a netns: `python dnsq.py NAME [tcp]`.

Prints one address per line, or `rcode=N` when there is none.
"""

from __future__ import annotations

import socket
import struct
import sys

from skiff.network import dns


def addresses(reply: bytes) -> list[str]:
    ancount = struct.unpack("!H", reply[6:8])[0]
    _, offset = dns.decode_name(reply, 12)
    offset += 4
    out = []
    for _ in range(ancount):
        _, offset = dns.decode_name(reply, offset)
        rtype, _, _, length = struct.unpack("!HHIH", reply[offset : offset + 10])
        offset += 10
        if rtype == dns.TYPE_A:
            out.append(socket.inet_ntoa(reply[offset : offset + length]))
        offset += length
    return out


def main() -> None:
    name = sys.argv[1]
    query = dns.build_query(name)
    if len(sys.argv) > 2 and sys.argv[2] == "tcp":
        with socket.create_connection(("127.0.0.11", 53), timeout=5) as s:
            s.sendall(struct.pack("!H", len(query)) + query)
            (n,) = struct.unpack("!H", s.recv(2))
            reply = b""
            while len(reply) < n:
                reply += s.recv(n - len(reply))
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(query, ("127.0.0.11", 53))
            reply = s.recv(4096)
    found = addresses(reply)
    print("\n".join(found) if found else f"rcode={reply[3] & 0xF}")


if __name__ == "__main__":
    main()
