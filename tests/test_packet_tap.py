"""packet_tap: a receiver hands each returned frame's payload as received to a callable."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from video_helpers import scene

from netgear import NetGear, OptionError, TappedPacket


@pytest.mark.timeout(20)
@pytest.mark.parametrize("options, fragment", [
    ({"packet_tap": print}, "packet_tap is for receivers"),
    ({"packet_tap": print, "receive_mode": True, "pattern": 2, "conflate": True},
     "packet_tap and conflate both set"),
    ({"packet_tap": 3, "receive_mode": True}, "must be a callable"),
])
def test_bad_tap_options_fail_before_any_socket(port, options, fragment):
    with pytest.raises(OptionError) as caught:
        NetGear(address="127.0.0.1", port=port, **options)
    assert caught.value.key == "packet_tap" and fragment in str(caught.value)


@pytest.mark.timeout(30)
def test_tap_sees_every_returned_frame_as_it_travelled(port):
    frames = scene(160, 96, 8)
    tapped: list[tuple[TappedPacket, bytes]] = []
    receiver = NetGear(address="127.0.0.1", port=port, pattern=1, receive_mode=True,
                       receive_timeout=10.0,
                       packet_tap=lambda p: tapped.append((p, bytes(p.payload))))
    sender = NetGear(address="127.0.0.1", port=port, pattern=1, video_codec="h264")
    try:
        got = []
        for frame in frames:
            sender.send(frame)
            got.append(receiver.recv())
        stats = receiver.stats["streams"][str(port)]
    finally:
        sender.close()
        receiver.close()
    assert len(tapped) == len(frames)
    packets = [p for p, _ in tapped]
    assert all(p.codec == "h264" and p.stream == str(port) for p in packets)
    assert [p.video.seq for p in packets] == list(range(len(frames)))
    assert packets[0].video.keyframe and packets[0].video.shape == (96, 160, 3)
    # the frame handed to the tap is the one recv() returned; the payload is what arrived
    assert all(p.frame is frame for p, frame in zip(packets, got))
    assert sum(len(data) for _, data in tapped) == stats["bytes"]
    assert tapped[0][1].startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))  # Annex B


@pytest.mark.timeout(30)
def test_frames_that_do_not_decode_are_not_tapped(port):
    """A refused frame (here: a codec the receiver does not accept) never reaches the tap."""
    tapped: list[str] = []
    receiver = NetGear(address="127.0.0.1", port=port, pattern=1, receive_mode=True,
                       receive_timeout=10.0, accepted_codecs=["raw"],
                       packet_tap=lambda p: tapped.append(p.codec))
    jpeg = NetGear(address="127.0.0.1", port=port, pattern=1, jpeg_compression=True)
    frame = np.full((48, 64, 3), 90, np.uint8)
    ended: list[object] = []
    reader = threading.Thread(target=lambda: ended.append(receiver.recv()), daemon=True)
    try:
        reader.start()  # REQ/REP: the sender waits for each reply, so recv() runs meanwhile
        for _ in range(3):
            jpeg.send(frame)
        jpeg.close()  # its end-of-stream ends recv(): nothing was returned, nothing tapped
        reader.join(15)
        assert ended == [None]
        assert receiver.stats["refused"] == 3
    finally:
        jpeg.close()
        receiver.close()
        reader.join(5)
    assert tapped == []
