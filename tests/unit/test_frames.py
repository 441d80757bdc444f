"""The sandbox channel's frames."""

import io

from squall.runtime.bootstrap import frames


def test_round_trip_keeps_payload_bytes() -> None:
    payload = bytes(range(256)) * 100
    stream = io.BytesIO(frames.encode({"t": "invoke", "id": "r1"}, payload) + frames.encode({"t": "x"}))
    assert frames.read(stream) == ({"t": "invoke", "id": "r1"}, payload)
    assert frames.read(stream) == ({"t": "x"}, b"")
    assert frames.read(stream) is None


def test_truncated_frame_is_end_of_stream() -> None:
    data = frames.encode({"t": "result"}, b"0123456789")
    assert frames.read(io.BytesIO(data[:-3])) is None
