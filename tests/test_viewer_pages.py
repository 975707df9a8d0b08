"""Stream pages and recordings in the web viewer: routes, history, Range, traversal, auth."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest
from conftest import free_port
from recording_helpers import FPS, SIZE, frame, segment_path, write_events, write_segment
from web_helpers import running_viewer, wait_for

from netgear import OptionError
from netgear.web import MontageHub, ViewerServer
from netgear.web.recordings import EVENT_TAIL, Recordings

TOKEN = "pages-token-123456"
NEW_ROUTES = ("/stream/{port}", "/stream/{port}/live.mjpg", "/api/streams/{port}",
              "/api/events", "/api/recordings", "/recordings", "/files/{seg}")


@pytest.fixture
def hub() -> Iterator[MontageHub]:
    hub = MontageHub([free_port()], address="127.0.0.1")  # not started: routes read snapshots
    try:
        yield hub
    finally:
        hub.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A recordings folder: two segments of cam1 (one with a sidecar), a JPEG day, events."""
    root = tmp_path / "rec"
    start = time.time() - 3600
    write_segment(segment_path(root, "cam1", start), frames=2 * FPS,
                  sidecar={"start": start, "end": start + 2.0, "frames": 2 * FPS,
                           "bytes": 0, "codec": "h264", "complete": True})
    write_segment(segment_path(root, "cam1", start + 60), frames=FPS)
    day = root / "cam2" / time.strftime("%Y-%m-%d")
    day.mkdir(parents=True)
    for i in range(3):
        _, buf = cv2.imencode(".jpg", frame(i))
        (day / f"cam2_{i:04d}.jpg").write_bytes(buf.tobytes())
    write_events(root, [{"ts": start, "event": "joined", "stream": "cam1"},
                        {"ts": start + 1, "event": "segment_opened", "stream": "cam1",
                         "path": "cam1/x.mp4"},
                        {"ts": start + 2, "event": "message", "stream": "cam2", "text": "hi"}])
    return root


@contextmanager
def _client(hub: MontageHub, root: Path | None, **kw) -> Iterator[httpx.Client]:
    """The viewer on a free loopback port, and an HTTP client for it."""
    web = ViewerServer(hub, port=0, recordings_dir=root, **kw).start()
    try:
        with httpx.Client(base_url=web.url, timeout=10) as client:
            yield client
    finally:
        web.stop()


def _decode_all(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


# -- live stream pages ---------------------------------------------------------------------
@pytest.mark.timeout(40)
def test_stream_page_history_samples_and_hub_events():
    with running_viewer(streams=2, stale_after=1.0, fps=20) as viewer:
        port = str(viewer.ports[0])
        page = httpx.get(viewer.url + f"stream/{port}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<svg" in page.text and "http" not in page.text.replace(
            "http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere
        url = viewer.url + f"api/streams/{port}"
        doc = wait_for(lambda: (d := httpx.get(url).json()) and len(d["samples"]) >= 4 and d,
                       timeout=15)
        assert doc["stream"]["name"] == "cam1" and doc["recordings"] is False
        times = [s[0] for s in doc["samples"]]
        gaps = np.diff(times)
        assert 0.5 < float(np.median(gaps)) < 2.0  # about one sample a second
        last = doc["samples"][-1]
        assert 5 <= last[1] <= 35  # fps of a 20 fps sender (wide: a loaded 2-core CI box)
        assert last[2] >= 0  # latency ms
        assert last[3] > 10  # kbit/s: JPEG frames of 320x240 at 20 fps are far above this
        assert [e["event"] for e in doc["events"]] == ["joined"]

        # the ring is bounded and per stream
        assert len(viewer.hub.history.samples(port)) <= 300
        assert viewer.hub.history.samples("nope") == []

        viewer.senders[viewer.ports[0]].stop()
        wait_for(lambda: [e["event"] for e in httpx.get(url).json()["events"]][:1] == ["stale"],
                 timeout=10)
        other = httpx.get(viewer.url + f"api/streams/{viewer.ports[1]}").json()
        assert [e["event"] for e in other["events"]] == ["joined"]  # not the other's events
        all_events = httpx.get(viewer.url + "api/events").json()["events"]
        assert {(e["port"], e["event"]) for e in all_events} >= {(port, "stale"),
                                                                 (port, "joined")}


@pytest.mark.timeout(30)
def test_per_stream_mjpeg_is_that_streams_frame_and_unknown_ports_404():
    with running_viewer(streams=2) as viewer:
        port = viewer.ports[1]
        wait_for(lambda: httpx.get(viewer.url + f"api/streams/{port}").json()["stream"][
            "status"] == "live", timeout=10)
        buf = b""
        with httpx.stream("GET", viewer.url + f"stream/{port}/live.mjpg", timeout=5) as res:
            assert res.headers["content-type"].startswith("multipart/x-mixed-replace")
            for chunk in res.iter_bytes():
                buf += chunk
                if buf.count(b"\xff\xd9") >= 2:
                    break
        jpeg = buf[buf.index(b"\xff\xd8"):buf.index(b"\xff\xd9") + 2]
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (240, 320, 3)  # the stream itself, not the 2-tile montage
        for path in ("stream/1/live.mjpg", "stream/1", "api/streams/1", "stream/abc"):
            res = httpx.get(viewer.url + path)
            assert res.status_code == 404 and "no stream on port" in res.text


# -- recordings ------------------------------------------------------------------------------
def test_recordings_listing_per_stream_day_with_size_and_duration(hub, root):
    with _client(hub, root) as client:
        doc = client.get("/api/recordings").json()
        assert doc["enabled"] is True and doc["error"] is None
        segs = doc["segments"]
        mp4 = [s for s in segs if s["kind"] == "mp4"]
        assert [s["stream"] for s in mp4] == ["cam1", "cam1"]
        newer, older = mp4  # newest first
        assert older["duration"] == 2.0 and older["frames"] == 2 * FPS and older["complete"] is True
        assert newer["frames"] is None and newer["duration"] is not None  # from name + mtime
        for s in mp4:
            assert s["size"] == (root / s["path"]).stat().st_size > 1000
            assert s["day"] == s["path"].split("/")[1]
        jpeg = [s for s in segs if s["kind"] == "jpeg"]
        assert len(jpeg) == 1 and jpeg[0]["files"] == 3 and jpeg[0]["stream"] == "cam2"
        only = client.get("/api/recordings", params={"stream": "cam2"}).json()["segments"]
        assert [s["stream"] for s in only] == ["cam2"]
        page = client.get("/recordings")
        assert page.status_code == 200 and "<video" in page.text


def test_segment_served_whole_decodes_every_frame(hub, root):
    with _client(hub, root) as client:
        seg = client.get("/api/recordings").json()["segments"][-1]
        assert seg["kind"] == "mp4" and seg["frames"] == 2 * FPS
        res = client.get(f"/files/{seg['path']}")
        assert res.status_code == 200 and res.headers["content-type"] == "video/mp4"
        assert res.headers["accept-ranges"] == "bytes"
        frames = _decode_all(res.content)
        assert len(frames) == 2 * FPS and frames[0].shape == (SIZE[1], SIZE[0], 3)
        for i in (0, len(frames) - 1):  # within the codec's quality
            assert float(np.abs(frames[i].astype(int) - frame(i).astype(int)).mean()) < 12


def test_range_requests(hub, root):
    with _client(hub, root) as client:
        seg = next(s["path"] for s in client.get("/api/recordings").json()["segments"]
                   if s["kind"] == "mp4")
        data = (root / seg).read_bytes()
        res = client.get(f"/files/{seg}", headers={"Range": "bytes=100-199"})
        assert res.status_code == 206 and res.content == data[100:200]
        assert res.headers["content-range"] == f"bytes 100-199/{len(data)}"
        res = client.get(f"/files/{seg}", headers={"Range": "bytes=-64"})
        assert res.status_code == 206 and res.content == data[-64:]
        res = client.get(f"/files/{seg}", headers={"Range": f"bytes={len(data) - 10}-"})
        assert res.status_code == 206 and res.content == data[-10:]
        res = client.get(f"/files/{seg}", headers={"Range": f"bytes={len(data) + 5}-"})
        assert res.status_code == 416 and res.headers["content-range"] == f"bytes */{len(data)}"
        head = client.head(f"/files/{seg}")
        assert head.status_code == 200 and int(head.headers["content-length"]) == len(data)
        jpg = next((root / "cam2").rglob("*.jpg")).relative_to(root).as_posix()
        res = client.get(f"/files/{jpg}")
        assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"


def test_path_traversal_is_impossible(hub, root, tmp_path):
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"private")
    (root / "cam1" / "link.mp4").symlink_to(secret)
    (root / "cam1" / "dirlink").symlink_to(tmp_path)
    with _client(hub, root) as client:
        day = next((root / "cam1").glob("20*")).name
        for path in ("../secret.mp4", "cam1/../../secret.mp4", "%2e%2e/secret.mp4",
                     "cam1/%2e%2e/%2e%2e/secret.mp4", "..%2fsecret.mp4", "%2fetc%2fpasswd",
                     "/" + str(secret), "cam1/link.mp4", "cam1/dirlink/secret.mp4",
                     "events/" + time.strftime("%Y-%m-%d") + ".jsonl",  # not a served type
                     next((root / "cam1" / day).glob("*.json")).relative_to(root).as_posix(),
                     "cam1/" + day + "/missing.mp4", "cam1%00.mp4", "cam1"):
            res = client.get("/files/" + path)
            assert res.status_code == 404, path
            assert b"private" not in res.content
        rec = Recordings(root)
        assert rec.resolve("../secret.mp4") is None and rec.resolve(str(secret)) is None
        assert rec.resolve("cam1/link.mp4") is None and rec.resolve("a\x00b.mp4") is None


def test_without_recordings_dir_there_is_no_recordings_ui(hub, root):
    with _client(hub, None) as client:
        assert client.get("/api/recordings").json() == {"enabled": False, "segments": [],
                                                        "error": None}
        assert client.get("/recordings").status_code == 404
        seg = next(root.rglob("*.mp4")).relative_to(root).as_posix()
        assert client.get(f"/files/{seg}").status_code == 404


def test_stream_events_come_from_the_event_log(hub, root):
    port = hub.ports[0]
    write_events(root, [{"ts": time.time(), "event": "message", "stream": port, "text": "x"},
                        {"ts": time.time(), "event": "error", "stream": None,
                         "message": "disk full"}])
    with _client(hub, root) as client:
        doc = client.get(f"/api/streams/{port}").json()
        # the stream's own events (by port: it has no name yet) and stream-less ones, newest first
        assert [e["event"] for e in doc["events"]] == ["error", "message"]
        assert doc["recorder_error"]["message"] == "disk full"


def test_recorder_error_status_until_recording_works_again(hub, tmp_path):
    root = tmp_path / "rec"
    with _client(hub, root) as client:
        err = client.get("/api/recordings").json()["error"]
        assert "missing or not readable" in err["message"]  # no folder yet: said, not a crash
        now = time.time()
        write_events(root, [{"ts": now, "event": "segment_opened", "stream": "cam1"},
                            {"ts": now + 1, "event": "error", "stream": "cam1",
                             "message": "No space left on device"},
                            {"ts": now + 1, "event": "joined", "stream": "cam2"}])
        with (root / "events" / (time.strftime("%Y-%m-%d") + ".jsonl")).open("a") as fh:
            fh.write("not json\n{\"half\": \n")  # a torn last line, as after a crash
        doc = client.get("/api/recordings").json()
        assert doc["error"]["message"] == "No space left on device"
        assert client.get("/api/recordings", params={"stream": "cam2"}).json()["error"] is None
        write_events(root, [{"ts": now + 2, "event": "segment_opened", "stream": "cam1"}])
        assert client.get("/api/recordings").json()["error"] is None


def test_event_log_read_is_bounded(hub, tmp_path):
    root = tmp_path / "rec"
    line = {"ts": 1.0, "event": "message", "stream": "cam1", "text": "x" * 200}
    write_events(root, [line] * (3 * EVENT_TAIL // 250))  # ~3x the tail that is read
    write_events(root, [{"ts": 2.0, "event": "stale", "stream": "cam1"}])
    t0 = time.monotonic()
    events = Recordings(root).events(("cam1",), limit=1000)
    assert time.monotonic() - t0 < 5
    assert events[0]["event"] == "stale" and len(events) < 2 * EVENT_TAIL // 250


def test_new_routes_sit_behind_host_check_and_token(hub, root):
    port = hub.ports[0]
    seg = next(root.rglob("*.mp4")).relative_to(root).as_posix()
    with _client(hub, root, token=TOKEN) as client:
        for route in NEW_ROUTES:
            path = route.format(port=port, seg=seg)
            assert client.get(path).status_code == 401, path
            with client.stream("GET", path, headers={"Authorization": f"Bearer {TOKEN}"}) as ok:
                assert ok.status_code == 200, path  # (the MJPEG one would stream forever)
            bad_host = client.get(path, headers={"Host": "evil.example",
                                                 "Authorization": f"Bearer {TOKEN}"})
            assert bad_host.status_code == 400, path
        res = client.get(f"/files/{seg}", headers={"Authorization": f"Bearer {TOKEN}",
                                                   "Range": "bytes=0-9"})
        assert res.status_code == 206 and len(res.content) == 10


def test_recordings_dir_option_is_checked_before_binding(hub, tmp_path):
    bad = tmp_path / "file"
    bad.write_text("x")
    web_port = free_port()
    for value, words in ((bad, "is a file"), (42, "must be a folder path"), ("", "folder")):
        with pytest.raises(OptionError, match=words) as info:
            ViewerServer(hub, port=web_port, recordings_dir=value)
        assert info.value.key == "recordings_dir"
    with pytest.raises(httpx.ConnectError):  # nothing listens: the error came first
        httpx.get(f"http://127.0.0.1:{web_port}/", timeout=2)
    # a folder the recorder has not made yet is accepted, and the page says so
    with _client(hub, tmp_path / "later") as client:
        error = client.get("/api/recordings").json()["error"]
        assert "missing or not readable" in error["message"]
    assert not (tmp_path / "later").exists()  # the viewer only reads


@pytest.mark.timeout(40)
def test_netgear_view_recordings_flag(root, tmp_path):
    from test_cli import cli, read_url

    proc = cli("view", "--address", "127.0.0.1", "--port", str(free_port()), "--web-port", "0",
               "--stats-every", "0", "--recordings", str(root))
    try:
        url = read_url(proc)
        doc = httpx.get(url + "api/recordings", timeout=5).json()
        assert doc["enabled"] is True
        assert sum(s["kind"] == "mp4" for s in doc["segments"]) == 2
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    bad = tmp_path / "file.txt"
    bad.write_text("x")
    proc = cli("view", "--address", "127.0.0.1", "--port", str(free_port()), "--web-port", "0",
               "--recordings", str(bad))
    _, err = proc.communicate(timeout=15)
    assert proc.returncode != 0 and "is a file, not a folder" in err
    assert "Traceback" not in err


def test_history_ring_is_bounded_and_bitrate_is_bytes_over_time():
    from netgear.web.history import History

    history = History(seconds=5, max_events=3)
    for i in range(10):
        status = "live" if i % 2 else "stale"
        stream = {"port": "1", "name": "cam", "status": status, "fps": 10.0,
                  "latency_ms": 2.5}
        # 125 000 bytes a second = 1000 kbit/s
        history.sample([stream], {"1": {"bytes": 125_000 * i}}, now=1000.0 + i)
    samples = history.samples("1")
    assert len(samples) == 5 and [s[0] for s in samples] == [1005.0 + i for i in range(5)]
    assert all(s[1:] == (10.0, 2.5, 1000.0) for s in samples)
    events = history.events()
    assert len(events) == 3 and events[0]["ts"] == 1009.0  # newest first, bounded
    assert [e["event"] for e in events] == ["live", "stale", "live"]
    # a counter that went backwards (the receiver restarted) is no negative bitrate
    history.sample([stream], {"1": {"bytes": 0}}, now=1011.0)
    assert history.samples("1")[-1][3] == 0.0


def test_stream_jpeg_of_grey_bgra_and_non_image_frames(hub):
    port = hub.ports[0]
    assert hub.stream_jpeg(port) is None  # no frame yet
    for shape in ((120, 160), (120, 160, 4)):
        hub._store((port, np.full(shape, 200, np.uint8)))  # what the receive thread does
        hub._stream_jpegs.clear()
        image = cv2.imdecode(np.frombuffer(hub.stream_jpeg(port), np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (120, 160, 3) and abs(int(image.mean()) - 200) < 3
    hub._store((port, np.zeros((4, 4), np.float32)))
    hub._stream_jpegs.clear()
    assert hub.stream_jpeg(port) is None


@pytest.mark.timeout(30)
def test_a_segment_growing_while_served_is_sent_at_its_size_when_asked(hub, tmp_path,
                                                                        caplog):
    root = tmp_path / "rec"
    path = segment_path(root, "cam1", time.time())
    path.parent.mkdir(parents=True)
    data = os.urandom(4 * 1024 * 1024)  # far more than the socket buffers hold
    path.write_bytes(data)
    rel = path.relative_to(root).as_posix()
    with _client(hub, root) as client, client.stream("GET", f"/files/{rel}") as res:
        assert res.status_code == 200 and int(res.headers["content-length"]) == len(data)
        chunks = res.iter_raw()
        got = next(chunks)
        with path.open("ab") as fh:  # the recorder appends a fragment meanwhile
            fh.write(b"\0" * 1024 * 1024)
        for chunk in chunks:
            got += chunk
    assert got == data
    # reading on to the new end would overrun the Content-Length: an ASGI error server-side
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


def test_listing_limit_reads_newest_days_and_sees_sidecars_appear(root):
    data = next(root.rglob("*.mp4")).read_bytes()
    base = time.time() - 5 * 86400
    for day in range(4):
        for stream in ("cam1", "cam3"):
            for minute in range(3):
                path = segment_path(root, stream, base + day * 86400 + minute * 60)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
    rec = Recordings(root)
    everything = rec.segments(limit=10_000)
    assert len(everything) == 4 * 2 * 3 + 3  # + the fixture's two segments and JPEG day
    for limit in (1, 4, 7, 20):
        assert rec.segments(limit=limit) == everything[:limit]
    assert rec.segments(("cam3",), limit=2) == [s for s in everything
                                                if s["stream"] == "cam3"][:2]
    newest = rec.segments(("cam3",), limit=1)[0]
    assert newest["complete"] is None
    # the recorder closes the segment: the next listing shows the sidecar, not a cached row
    (root / (newest["path"] + ".json")).write_text(json.dumps(
        {"start": newest["start"], "end": newest["start"] + 60, "frames": 900,
         "complete": True}))
    again = rec.segments(("cam3",), limit=1)[0]
    assert again["path"] == newest["path"]
    assert (again["complete"], again["frames"], again["duration"]) == (True, 900, 60.0)
