"""The web viewer over real HTTP: page, /stats JSON, MJPEG stream, staleness, shutdown."""

from __future__ import annotations

import subprocess
import sys
import time

import cv2
import httpx
import numpy as np
import pytest
from web_helpers import running_viewer, wait_for

from netgear import DependencyError

STREAM_KEYS = {"port", "name", "status", "stale", "codec", "fps", "kbps", "frames", "dropped",
               "latency_ms", "last_seen", "age"}


def _live(url: str, count: int):
    def check():
        streams = httpx.get(url + "stats", timeout=2).json()["streams"]
        return streams if sum(s["status"] == "live" for s in streams) == count else None
    return check


def _jpeg_parts(url: str, want: int, timeout: float = 5.0) -> tuple[str, list[bytes]]:
    """Read the MJPEG stream until ``want`` complete JPEG parts arrived."""
    deadline = time.monotonic() + timeout
    buf = b""
    with httpx.stream("GET", url + "montage.mjpg", timeout=timeout) as res:
        ctype = res.headers["content-type"]
        for chunk in res.iter_bytes():
            buf += chunk
            parts = [p for p in buf.split(b"--netgearframe\r\n") if p.endswith(b"\xff\xd9\r\n")]
            if len(parts) >= want or time.monotonic() > deadline:
                break
    bodies = [p.split(b"\r\n\r\n", 1)[1][:-2] for p in parts]
    return ctype, bodies


@pytest.mark.timeout(30)
def test_stats_json_shape_and_page():
    with running_viewer(streams=2) as viewer:
        live = _live(viewer.url, 2)
        # a bitrate needs two frames of a stream: wait for it, not only for the first frame
        streams = wait_for(lambda: (got := live()) and all(s["kbps"] > 0 for s in got)
                           and got, timeout=10)
        assert [s["port"] for s in streams] == [str(p) for p in viewer.ports]
        assert [s["name"] for s in streams] == ["cam1", "cam2"]  # from the sender's message
        for s in streams:
            assert set(s) == STREAM_KEYS
            assert s["stale"] is False and s["frames"] > 0 and s["dropped"] == 0
            assert isinstance(s["fps"], float) and s["latency_ms"] >= 0
            assert s["last_seen"] > 0 and 0 <= s["age"] < 2
            assert s["codec"] == "raw" and s["kbps"] > 0
        doc = httpx.get(viewer.url + "stats").json()
        assert doc["stale_after"] == 2.0 and doc["receiving"] is True
        assert httpx.get(viewer.url + "stats").headers["content-type"] == "application/json"

        page = httpx.get(viewer.url)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<img id="montage" src="/montage.mjpg"' in page.text
        assert 'fetch("/stats"' in page.text
        assert "<th>codec</th>" in page.text and "<th>kbit/s</th>" in page.text
        assert httpx.get(viewer.url + "nope").status_code == 404


@pytest.mark.timeout(30)
def test_fps_settles_near_the_sender_rate():
    with running_viewer(streams=1, fps=20) as viewer:
        wait_for(_live(viewer.url, 1), timeout=10)
        time.sleep(1.5)  # a full window of arrivals
        fps = httpx.get(viewer.url + "stats").json()["streams"][0]["fps"]
        assert 15 <= fps <= 25


@pytest.mark.timeout(40)
def test_codec_and_bitrate_per_stream():
    """Each stream shows the codec its frames travel in and its bitrate on the wire."""
    fps, size = 10, (320, 240)
    with running_viewer(streams=3, start_senders=False) as viewer:
        raw, jpeg, h264 = viewer.ports
        viewer.add_sender(raw, "raw", fps=fps, size=size)
        viewer.add_sender(jpeg, "jpeg", fps=fps, size=size, jpeg_compression=True)
        viewer.add_sender(h264, "h264", fps=fps, size=size, video_codec="h264")
        wait_for(_live(viewer.url, 3), timeout=15)
        time.sleep(2.5)  # half a bitrate window, so every stream has many frames in it
        streams = {s["name"]: s for s in httpx.get(viewer.url + "stats").json()["streams"]}
        assert {n: s["codec"] for n, s in streams.items()} == {
            "raw": "raw", "jpeg": "jpeg", "h264": "h264"}
        # raw: every frame's pixels, so the rate is frame bytes x the measured frame rate
        raw_kbps = size[0] * size[1] * 3 * 8 * streams["raw"]["fps"] / 1000
        assert 0.7 * raw_kbps < streams["raw"]["kbps"] < 1.3 * raw_kbps, streams["raw"]
        kbps = [streams[n]["kbps"] for n in ("h264", "jpeg", "raw")]
        assert 0 < kbps[0] < kbps[1] / 2 and kbps[1] < kbps[2] / 4, kbps
        stats = viewer.hub.stats()["streams"]
        assert [s["codec"] for s in stats] == ["raw", "jpeg", "h264"]
        viewer.senders[h264].stop()
        wait_for(lambda: httpx.get(viewer.url + "stats").json()["streams"][2]["stale"],
                 timeout=5)
        stale = httpx.get(viewer.url + "stats").json()["streams"][2]
        assert stale["kbps"] == 0.0 and stale["codec"] == "h264"  # the codec it last had


@pytest.mark.timeout(30)
def test_mjpeg_stream_sends_montage_jpegs():
    with running_viewer(streams=2) as viewer:
        wait_for(_live(viewer.url, 2), timeout=10)
        ctype, bodies = _jpeg_parts(viewer.url, want=3)
        assert ctype == "multipart/x-mixed-replace; boundary=netgearframe"
        assert len(bodies) >= 3
        images = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in bodies]
        # two 320x240 tiles side by side (make_montage: ceil(sqrt(2)) = 2 columns)
        assert all(img is not None and img.shape == (240, 640, 3) for img in images)
        assert bodies[0] != bodies[-1]  # the scene moves
        single = httpx.get(viewer.url + "montage.jpg")
        assert single.headers["content-type"] == "image/jpeg"
        assert single.content.startswith(b"\xff\xd8")


@pytest.mark.timeout(30)
def test_stopped_stream_turns_stale_and_grey():
    with running_viewer(streams=2, stale_after=0.6) as viewer:
        wait_for(_live(viewer.url, 2), timeout=10)
        viewer.senders[viewer.ports[0]].stop()

        def first_stale():
            streams = httpx.get(viewer.url + "stats").json()["streams"]
            return streams if streams[0]["stale"] else None

        streams = wait_for(first_stale, timeout=5)
        assert streams[0]["status"] == "stale" and streams[0]["fps"] == 0.0
        assert streams[0]["frames"] > 0 and streams[0]["age"] > 0.6
        assert streams[1]["stale"] is False and streams[1]["status"] == "live"

        jpeg = httpx.get(viewer.url + "montage.jpg").content
        montage = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(int)
        stale_tile, live_tile = montage[40:, :320], montage[40:, 320:]  # below the label

        def colourful(tile: np.ndarray) -> float:  # share of clearly non-grey pixels
            return float((np.abs(tile[..., 0] - tile[..., 2]) > 40).mean())

        # grey apart from the red STALE caption; the live test pattern has colour bars
        assert colourful(stale_tile) < 0.05 and colourful(live_tile) > 0.2


@pytest.mark.timeout(30)
def test_waiting_stream_before_its_first_frame():
    with running_viewer(streams=1, start_senders=False) as viewer:
        (stream,) = httpx.get(viewer.url + "stats").json()["streams"]
        assert stream["status"] == "waiting" and stream["stale"] is True
        assert stream["frames"] == 0 and stream["last_seen"] is None and stream["age"] is None


@pytest.mark.timeout(30)
def test_stop_is_bounded_with_an_open_mjpeg_client():
    with running_viewer(streams=1) as viewer:
        wait_for(_live(viewer.url, 1), timeout=10)
        client = httpx.Client(timeout=10)
        res = client.send(client.build_request("GET", viewer.url + "montage.mjpg"), stream=True)
        next(res.iter_bytes())  # the stream is open and flowing
        started = time.monotonic()
        viewer.web.stop()
        assert time.monotonic() - started < 4
        res.close()
        client.close()


@pytest.mark.timeout(30)
def test_core_import_does_not_need_the_web_extra():
    code = ("import sys, netgear, netgear.web; "
            "assert 'starlette' not in sys.modules and 'uvicorn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=25)


@pytest.mark.timeout(10)
def test_missing_web_extra_names_the_install_command(monkeypatch):
    from netgear.web import MontageHub, create_app

    monkeypatch.setitem(sys.modules, "starlette", None)  # import starlette -> ImportError
    hub = MontageHub.__new__(MontageHub)  # never started: the app is not built anyway
    with pytest.raises(DependencyError, match=r"pip install netgear\[web\]"):
        create_app(hub)
