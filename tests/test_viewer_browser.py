"""A stream page in headless Chromium: plots that update, events, and a recording that plays.

Debian's Chromium plays H.264 in MP4 (checked with canPlayType and a real <video>), so the
viewer serves the recorder's segments as they are.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import free_port
from recording_helpers import FPS, segment_path, write_events, write_segment
from test_browser import browser  # noqa: F401  (the fixture)
from web_helpers import Viewer, wait_for

from netgear.web import MontageHub, ViewerServer

pytestmark = pytest.mark.browser


def _points(driver, plot: str) -> int:
    return int(driver.execute_script(
        f"return document.getElementById('plot-{plot}').dataset.points || '0';"))


@pytest.mark.timeout(90)
def test_stream_page_plots_update_and_a_recording_plays(browser, tmp_path: Path):  # noqa: F811
    driver = browser
    root = tmp_path / "rec"
    start = time.time() - 600
    write_segment(segment_path(root, "cam1", start), frames=4 * FPS,
                  sidecar={"start": start, "end": start + 4, "frames": 4 * FPS,
                           "codec": "h264", "complete": True})
    write_events(root, [{"ts": start, "event": "segment_opened", "stream": "cam1"},
                        {"ts": start + 5, "event": "error", "stream": "cam1",
                         "message": "No space left on device"}])
    port = free_port()
    hub = MontageHub([port], address="127.0.0.1").start()
    web = ViewerServer(hub, port=0, recordings_dir=root)
    viewer = Viewer(hub, web, [port])
    try:
        web.start()
        viewer.add_sender(port, "cam1", fps=15)
        driver.get(f"{web.url}stream/{port}")
        wait_for(lambda: driver.title == "netgear cam1", timeout=15)

        # the plots grow by a point a second
        first = wait_for(lambda: _points(driver, "fps") >= 2 and _points(driver, "fps"),
                         timeout=15)
        wait_for(lambda: _points(driver, "fps") >= first + 2, timeout=10)
        assert _points(driver, "kbps") == _points(driver, "latency") > first
        # the status line names the codec and the wire bitrate
        status = driver.find_element("id", "status").text
        assert "\u00b7 raw \u00b7" in status and " kbit/s" in status, status
        # the live view decodes this stream's frames (320x240, not a montage)
        size = wait_for(lambda: driver.execute_script(
            "const i = document.getElementById('live');"
            "return i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null;"),
            timeout=10)
        assert size == [320, 240]
        # the recorder's error from the event log is on the page, and in the events
        assert "No space left on device" in driver.find_element("id", "recorder-error").text
        assert "error" in driver.find_element("id", "events").text

        # the recordings list shows the segment; playing it advances the video
        wait_for(lambda: driver.find_elements("css selector", "#segments tbody button"),
                 timeout=10)[0].click()
        state = "const v = document.getElementById('player'); return [v.readyState, " \
                "v.currentTime, v.error ? v.error.code : null, v.videoWidth];"
        ready = wait_for(lambda: (s := driver.execute_script(state))[0] >= 2 and s, timeout=15)
        assert ready[2] is None and ready[3] == 320
        wait_for(lambda: driver.execute_script(state)[1] > ready[1] + 0.5, timeout=15)

        # the montage page links to the recordings page, which lists the same segment
        driver.get(web.url)
        codec = wait_for(lambda: driver.find_elements("css selector", "#stats td.codec"),
                         timeout=10)
        assert codec[0].text == "raw"
        link = wait_for(lambda: (a := driver.find_element("css selector", "#links a"))
                        .is_displayed() and a, timeout=10)
        link.click()
        rows = wait_for(lambda: driver.find_elements("css selector", "#segments tbody tr"),
                        timeout=10)
        assert [r.get_attribute("data-path") for r in rows] == [
            segment_path(root, "cam1", start).relative_to(root).as_posix()]
    finally:
        for sender in viewer.senders.values():
            sender.stop()
        web.stop()
        hub.close()
