"""The ``netgear`` command line: help, argument errors, demo, serve + view, keys, bench."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from web_helpers import wait_for

from netgear.cli import bench as bench_cmd
from netgear.cli import main

SCRIPT = Path(sys.executable).with_name("netgear")  # the console script in this venv
URL = re.compile(r"open (http://\S+) in a browser")


def cli(*args: str) -> subprocess.Popen[str]:
    """Start ``netgear ARGS`` as its own process (real signals, real exit status)."""
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "netgear.cli"]
    return subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def read_url(proc: subprocess.Popen[str], timeout: float = 15) -> str:
    """The montage URL the command prints, read from its stdout as it appears."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = URL.search(line)
        if match:
            return match.group(1)
    proc.kill()
    raise AssertionError(f"no URL printed; got {seen!r}, stderr {proc.communicate()[1]!r}")


# -- help and argument errors ------------------------------------------------------------
@pytest.mark.timeout(20)
@pytest.mark.parametrize("argv", [
    [], ["demo"], ["serve"], ["view"], ["keys"], ["keys", "generate"], ["keys", "show"],
    ["keys", "allow"],
])
def test_every_command_has_help(argv, capsys):
    assert main([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: netgear")
    assert "--help" in out


@pytest.mark.timeout(20)
def test_top_level_help_lists_every_command(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "serve", "view", "keys", "bench"):
        assert f"    {command}" in out


@pytest.mark.timeout(20)
@pytest.mark.parametrize("argv, message", [
    ([], "required: COMMAND"),
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["demo", "--resolution", "12"], "is not a size like 640x480"),
    (["demo", "--streams", "0"], "at least 1"),
    (["demo", "--pattern", "3"], "invalid choice: 3"),
    (["view", "--bogus"], "unrecognized arguments: --bogus"),
    (["view", "--port", "70000"], "not a port number"),
    (["serve", "--fps", "-1"], "greater than 0"),
    (["serve", "--codec", "vp9"], "invalid choice: 'vp9'"),
    (["demo", "--codec", "mjpeg"], "invalid choice: 'mjpeg'"),
    (["keys"], "required: ACTION"),
])
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.timeout(20)
@pytest.mark.parametrize("argv, message", [
    (["serve", "--pattern", "0"], "pattern 0 (PAIR) works only with --plain"),
    (["serve", "--source", "/no/such/clip.mp4"], "cannot open video source"),
    (["serve", "--jpeg-quality", "50", "--source", "testpattern"], "--jpeg-quality needs"),
    (["serve", "--jpeg-quality", "50", "--codec", "h264"], "--jpeg-quality needs"),
    (["serve", "--bitrate", "2000000", "--codec", "jpeg"], "--bitrate needs --codec h264"),
    (["serve", "--gop", "300"], "--gop needs --codec h264"),
    (["serve", "--codec", "h264", "--bitrate", "5", "--source", "testpattern"],
     "'video_bitrate'=5 is invalid"),
    (["serve", "--jpeg", "--codec", "h264"], "--jpeg and --codec h264 disagree"),
    (["demo", "--jpeg", "--codec", "raw"], "--jpeg and --codec raw disagree"),
    (["view", "--port", "5566", "5566"], "lists a port twice"),
    (["demo", "--streams", "65"], "more than 64"),
])
def test_user_errors_exit_1_in_plain_words(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith(f"netgear {argv[0]}: error:")


@pytest.mark.timeout(20)
def test_view_window_without_a_display(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["view", "--window", "--port", str(free_port())]) == 1
    assert "--window needs a display" in capsys.readouterr().err


@pytest.mark.timeout(20)
def test_busy_web_port_is_reported(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["view", "--address", "127.0.0.1", "--port", str(free_port()),
                     "--web-port", str(port)])
    assert code == 1
    assert "already in use" in capsys.readouterr().err


# -- demo --------------------------------------------------------------------------------
@pytest.mark.timeout(40)
def test_demo_runs_for_seconds_serves_and_exits_0():
    web_port = free_port()
    proc = cli("demo", "--seconds", "3", "--web-port", str(web_port), "--stats-every", "1",
               "--streams", "3", "--resolution", "320x240")
    url = read_url(proc)
    assert url == f"http://127.0.0.1:{web_port}/"

    def all_live():
        streams = httpx.get(url + "stats", timeout=2).json()["streams"]
        return len(streams) == 3 and all(s["status"] == "live" for s in streams)

    wait_for(all_live, timeout=10)
    assert "montage.mjpg" in httpx.get(url).text
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "camera 3 (port" in out and " fps" in out and "demo stopped" in out
    assert "Traceback" not in err


@pytest.mark.timeout(40)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_demo_stops_cleanly_on_signal(sig):
    proc = cli("demo", "--web-port", "0", "--streams", "2", "--resolution", "160x120",
               "--stats-every", "0", "--pattern", "2", "--jpeg")
    url = read_url(proc)
    wait_for(lambda: httpx.get(url + "stats", timeout=2).json()["streams"][1]["frames"],
             timeout=10)
    started = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - started < 5
    assert proc.returncode == 0, err
    assert "demo stopped" in out and "Traceback" not in err


# -- serve + view ------------------------------------------------------------------------
@pytest.mark.timeout(40)
def test_serve_and_view_talk(capsys):
    lobby, door = free_port(), free_port()
    viewer = cli("view", "--address", "127.0.0.1", "--port", str(lobby), str(door),
                 "--web-port", "0", "--stats-every", "0")
    try:
        url = read_url(viewer)
        remote = cli("serve", "--source", "testpattern", "--address", "127.0.0.1",
                     "--port", str(lobby), "--name", "lobby", "--frames", "20",
                     "--resolution", "160x120", "--fps", "40")
        # a second sender in this process: exercises main() and FrameSender directly
        assert main(["serve", "--source", "testpattern", "--address", "127.0.0.1",
                     "--port", str(door), "--frames", "15", "--jpeg",
                     "--resolution", "160x120", "--fps", "40"]) == 0
        assert "sent 15 frames" in capsys.readouterr().out
        assert remote.wait(timeout=15) == 0

        def both_done():
            streams = httpx.get(url + "stats", timeout=2).json()["streams"]
            return streams if [s["frames"] for s in streams] == [20, 15] else None

        streams = wait_for(both_done, timeout=10)
        assert [s["name"] for s in streams] == ["lobby", str(door)]
        assert all(s["dropped"] == 0 for s in streams)
    finally:
        viewer.send_signal(signal.SIGINT)
        _, err = viewer.communicate(timeout=10)
    assert viewer.returncode == 0, err


@pytest.mark.timeout(40)
def test_demo_with_a_video_codec():
    proc = cli("demo", "--seconds", "4", "--web-port", "0", "--stats-every", "0",
               "--streams", "2", "--resolution", "192x108", "--codec", "h264")
    url = read_url(proc)

    def all_live():
        streams = httpx.get(url + "stats", timeout=2).json()["streams"]
        return all(s["status"] == "live" and s["frames"] > 3 for s in streams) and streams

    streams = wait_for(all_live, timeout=10)
    assert len(streams) == 2
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "demo stopped" in out and "Traceback" not in err


@pytest.mark.timeout(40)
def test_serve_with_video_codecs_to_view(capsys):
    h264, hevc = free_port(), free_port()
    viewer = cli("view", "--address", "127.0.0.1", "--port", str(h264), str(hevc),
                 "--web-port", "0", "--stats-every", "0")
    try:
        url = read_url(viewer)
        remote = cli("serve", "--source", "testpattern", "--address", "127.0.0.1",
                     "--port", str(h264), "--frames", "12", "--codec", "h264",
                     "--bitrate", "500000", "--gop", "300", "--resolution", "160x120",
                     "--fps", "30")
        assert main(["serve", "--source", "testpattern", "--address", "127.0.0.1",
                     "--port", str(hevc), "--frames", "10", "--codec", "hevc",
                     "--resolution", "160x120", "--fps", "30"]) == 0
        out = capsys.readouterr().out
        assert "hevc)" in out and "sent 10 frames" in out
        assert remote.wait(timeout=15) == 0

        def both_done():
            streams = httpx.get(url + "stats", timeout=2).json()["streams"]
            return streams if [s["frames"] for s in streams] == [12, 10] else None

        # REQ/REP: the first frame is a keyframe, so every frame sent is shown
        streams = wait_for(both_done, timeout=10)
        assert all(s["dropped"] == 0 for s in streams)
    finally:
        viewer.send_signal(signal.SIGINT)
        _, err = viewer.communicate(timeout=10)
    assert viewer.returncode == 0, err


# -- keys --------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_keys_generate_show_allow(tmp_path, capsys):
    folder = tmp_path / "keys"
    assert main(["keys", "generate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"keys ready in {folder}" in out
    for path in ("private/server.key_secret", "private/client.key_secret",
                 "public/server.key", "public/client.key"):
        assert (folder / path).is_file(), path

    assert main(["keys", "show", str(folder)]) == 0
    out = capsys.readouterr().out
    server_key = (folder / "public/server.key").read_text()
    shown = re.search(r"server: (\S{40})", out)
    assert shown and shown.group(1) in server_key
    assert "client:" in out and "problem" not in out

    sender = tmp_path / "sender"
    assert main(["keys", "generate", str(sender)]) == 0
    assert main(["keys", "allow", str(folder), str(sender / "public/client.key"),
                 "--name", "camera1"]) == 0
    assert (folder / "allowed/camera1.key").is_file()
    capsys.readouterr()
    assert main(["keys", "show", str(folder)]) == 0
    assert "camera1.key" in capsys.readouterr().out


@pytest.mark.timeout(20)
def test_keys_show_missing_folder(tmp_path, capsys):
    assert main(["keys", "show", str(tmp_path / "none")]) == 1
    assert "netgear keys generate" in capsys.readouterr().err


# -- bench -------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_bench_passes_arguments_through(capsys):
    assert main(["bench", "--list"]) == 0
    assert "netgear" in capsys.readouterr().out
    assert main(["bench", "--help"]) == 0


@pytest.mark.timeout(20)
def test_bench_without_a_suite(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench_cmd, "ROOT", tmp_path)
    monkeypatch.setattr(bench_cmd, "INSTALLED", (tmp_path / "share",))
    assert main(["bench", "--list"]) == 1
    assert "no benchmark suite" in capsys.readouterr().err


@pytest.mark.timeout(30)
def test_bench_from_an_installed_package(tmp_path, capsys, monkeypatch):
    # where pip's data-files put the suite, with no checkout beside the package
    installed = tmp_path / "share" / "netgear" / "benchmarks"
    installed.mkdir(parents=True)
    for name in ("bench.py", "workers.py", "contenders.py"):
        shutil.copy(bench_cmd.ROOT / "benchmarks" / name, installed / name)
    monkeypatch.setattr(bench_cmd, "ROOT", tmp_path / "elsewhere")
    monkeypatch.setattr(bench_cmd, "INSTALLED", (installed,))
    assert bench_cmd.find_bench() == installed / "bench.py"
    assert main(["bench", "--list"]) == 0
    assert "netgear-pair" in capsys.readouterr().out


@pytest.mark.timeout(20)
def test_console_script_version():
    proc = cli("--version")
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0 and out.startswith("netgear ")


@pytest.mark.timeout(30)
def test_serve_secure_to_a_secure_viewer(tmp_path, capsys):
    from netgear.web import MontageHub

    keys = tmp_path / "keys"
    assert main(["keys", "generate", str(keys)]) == 0
    port = free_port()
    with MontageHub([port], address="127.0.0.1", secure_mode=2,
                    custom_cert_location=str(keys)) as hub:
        assert main(["serve", "--source", "testpattern", "--address", "127.0.0.1",
                     "--port", str(port), "--frames", "5", "--resolution", "160x120",
                     "--secure", "2", "--keys", str(keys)]) == 0
        wait_for(lambda: hub.snapshot()[0]["frames"] == 5, timeout=10)
    assert main(["serve", "--keys", str(keys)]) == 1
    assert "--keys needs --secure" in capsys.readouterr().err
