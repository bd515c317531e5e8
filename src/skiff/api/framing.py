"""Docker's multiplexed stream framing (moby's pkg/stdcopy), used when there is no TTY.

Each frame is an 8-byte header then the payload:

    [stream u8, 0, 0, 0, size u32 big-endian] payload[size]

stream: 0 stdin, 1 stdout, 2 stderr, 3 systemerr (a daemon error ending the stream).
Attach, exec and logs all use it. Pure, so both the daemon and the client import it.
"""

from __future__ import annotations

import struct

STDIN = 0
STDOUT = 1
STDERR = 2
SYSTEMERR = 3

HEADER = struct.Struct(">BxxxI")
HEADER_SIZE = HEADER.size
MAX_FRAME = 2**32 - 1


def encode_frame(stream: int, payload: bytes) -> bytes:
    if not 0 <= stream <= SYSTEMERR:
        raise ValueError(f"invalid stream {stream}")
    if len(payload) > MAX_FRAME:
        raise ValueError("frame payload too large")
    return HEADER.pack(stream, len(payload)) + payload


class FrameDecoder:
    """Incremental decoder: feed bytes as they arrive, get back whole frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        frames: list[tuple[int, bytes]] = []
        while len(self._buf) >= HEADER_SIZE:
            stream, size = HEADER.unpack_from(self._buf)
            if stream > SYSTEMERR:
                raise ValueError(f"unrecognized stream: {stream}")
            if len(self._buf) < HEADER_SIZE + size:
                break
            frames.append((stream, bytes(self._buf[HEADER_SIZE : HEADER_SIZE + size])))
            del self._buf[: HEADER_SIZE + size]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered (non-zero at EOF means truncation)."""
        return len(self._buf)
