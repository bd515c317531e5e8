from __future__ import annotations

import pytest

from skiff.api.framing import STDERR, STDOUT, FrameDecoder, encode_frame


def test_header_layout() -> None:
    assert encode_frame(STDOUT, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert encode_frame(STDERR, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"


def test_decoder_handles_split_and_joined_frames() -> None:
    data = encode_frame(STDOUT, b"hello\n") + encode_frame(STDERR, b"oops") + encode_frame(1, b"x")
    decoder = FrameDecoder()
    frames = []
    for i in range(len(data)):  # one byte at a time
        frames += decoder.feed(data[i : i + 1])
    assert frames == [(STDOUT, b"hello\n"), (STDERR, b"oops"), (STDOUT, b"x")]
    assert decoder.pending == 0
    assert FrameDecoder().feed(data) == frames


def test_truncation_is_visible_and_bad_stream_rejected() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame(STDOUT, b"hello")[:-2]) == []
    assert decoder.pending == 11
    with pytest.raises(ValueError, match="unrecognized stream"):
        FrameDecoder().feed(b"\x09\x00\x00\x00\x00\x00\x00\x00")
    with pytest.raises(ValueError, match="invalid stream"):
        encode_frame(7, b"")
