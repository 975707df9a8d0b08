"""The montage page in a real headless Chromium (Debian's chromium + chromium-driver).

`make test` installs both with apt-get when they are missing; this test is skipped only
when the browser or its driver is still not there, or selenium is not installed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_helpers import running_viewer, wait_for

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--window-size=1000,900",
    # belt and braces: nothing may resolve except loopback, whatever Chromium wants to fetch
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if not Path(CHROMIUM).exists() or not Path(DRIVER).exists():
        pytest.skip(f"Chromium not available ({CHROMIUM}, {DRIVER}); `make test` installs "
                    "it with apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    # an explicit driver path: Selenium Manager (which downloads drivers) never runs
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(15)
    try:
        yield driver
    finally:
        driver.quit()


def _rows(driver) -> dict[str, tuple[str, str]]:
    """port -> (row class, status text) from the stats table."""
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll('#stats tbody tr'))"
        ".map(r => [r.dataset.port, r.className, r.querySelector('.status').textContent]);")
    return {port: (cls, text) for port, cls, text in rows}


@pytest.mark.timeout(60)
def test_montage_page_live_in_chromium(browser):
    driver = browser
    with running_viewer(streams=3, stale_after=1.0) as viewer:
        driver.get(viewer.url)
        assert driver.title == "netgear montage"

        # the stats table shows every stream, live
        ports = [str(p) for p in viewer.ports]
        wait_for(lambda: set(_rows(driver)) == set(ports)
                 and all(c == "live" for c, _ in _rows(driver).values()), timeout=15)

        # the MJPEG image decoded: 3 tiles of 320x240 -> 2 columns x 2 rows
        size = wait_for(lambda: driver.execute_script(
            "const i = document.getElementById('montage');"
            "return i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null;"),
            timeout=10)
        assert size == [640, 480]

        # and it keeps updating: the test pattern scrolls, so two shots must differ
        img = driver.find_element("id", "montage")
        first = img.screenshot_as_png
        time.sleep(0.6)
        second = wait_for(lambda: (shot := img.screenshot_as_png) != first and shot,
                          timeout=5)
        assert second != first
        # same check on decoded pixels, independent of screenshot encoding
        sample = ("const i = document.getElementById('montage');"
                  "const c = document.createElement('canvas');"
                  "c.width = i.naturalWidth; c.height = i.naturalHeight;"
                  "const g = c.getContext('2d'); g.drawImage(i, 0, 0);"
                  "const d = g.getImageData(0, 0, c.width, c.height).data;"
                  "let h = 0; for (let k = 0; k < d.length; k += 97) h = (h * 31 + d[k]) | 0;"
                  "return h;")
        before = driver.execute_script(sample)
        wait_for(lambda: driver.execute_script(sample) != before, timeout=5)

        # a stream that stops is shown as STALE
        viewer.senders[viewer.ports[1]].stop()
        wait_for(lambda: _rows(driver)[ports[1]] == ("stale", "STALE"), timeout=10)
        assert _rows(driver)[ports[0]][0] == "live"


HOSTILE_NAME = '<img src=x onerror="document.title=\'pwned\'">'


@pytest.mark.timeout(60)
def test_stream_names_are_shown_as_text_never_run(browser):
    driver = browser
    with running_viewer(streams=1, start_senders=False) as viewer:
        viewer.add_sender(viewer.ports[0], HOSTILE_NAME)
        driver.get(viewer.url)
        port = str(viewer.ports[0])
        wait_for(lambda: _rows(driver).get(port, ("", ""))[0] == "live", timeout=15)
        cell = driver.execute_script(
            "const td = document.querySelector('#stats tbody tr td');"
            "return [td.textContent, td.querySelectorAll('*').length];")
        assert cell == [HOSTILE_NAME[:40], 0]  # the hub keeps 40 characters, as text
        assert driver.title == "netgear montage"  # the onerror never ran


@pytest.mark.timeout(60)
def test_token_in_the_url_once_lets_the_page_and_its_mjpeg_in(browser):
    from netgear.web import ViewerServer

    driver = browser
    token = "browser-token-123456"
    with running_viewer(streams=1) as viewer:
        viewer.web.stop()
        web = ViewerServer(viewer.hub, port=0, token=token).start()
        try:
            driver.get(web.url)  # no token: 401 (Chromium waits at its login prompt)
            assert driver.title != "netgear montage"
            assert driver.find_elements("id", "montage") == []
            driver.get(web.url + "?token=" + token)  # sets the cookie, redirects to /
            assert driver.current_url == web.url and driver.title == "netgear montage"
            # the <img> MJPEG stream and fetch("/stats") carried the cookie
            size = wait_for(lambda: driver.execute_script(
                "const i = document.getElementById('montage');"
                "return i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] "
                ": null;"), timeout=10)
            assert size == [320, 240]
            wait_for(lambda: _rows(driver).get(str(viewer.ports[0]), ("",))[0] == "live",
                     timeout=15)
        finally:
            web.stop()
