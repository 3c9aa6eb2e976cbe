import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from merkit.errors import ConfigError
from merkit.inference.dashboard import Dashboard
from merkit.inference.live import live, live_source
from merkit.io.video import count_video_frames, read_video, write_video
from merkit.spotting import KIND_RGB
from merkit.synthetic.long_videos import plan_long_video, render_long_video

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FPS = 15.0
CUT = 195  # the stream is cut at 13 s of 16


@pytest.fixture(scope="module")
def recording():
    """16 s at 15 fps, 320 x 240: micro-expressions at 6.5, 7.5 and 14.6 s, a macro one at 8.6-11.5 s, a blink."""
    plan = plan_long_video(16, FPS, size=(240, 320), micro=3, macro=1, distractors={"blink": 1}, seed=21)
    return plan, np.stack(list(render_long_video(plan)))


def serve_mpegts(frames: np.ndarray, fps: float, pause: tuple[int, float] = (0, 0.0)) -> int:
    """A port on 127.0.0.1 that sends ``frames`` as an H.264 MPEG-TS stream to the first client
    (silent for ``pause[1]`` seconds before frame ``pause[0]``), then hangs up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def send():
        with listener:
            connection, _ = listener.accept()
            try:
                with (
                    connection,
                    connection.makefile("wb") as pipe,
                    av.open(pipe, mode="w", format="mpegts") as container,
                ):
                    stream = container.add_stream(
                        "libx264", rate=int(fps), options={"preset": "ultrafast", "tune": "zerolatency", "crf": "12"}
                    )
                    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
                    for t, frame in enumerate(frames):
                        if t == pause[0]:
                            time.sleep(pause[1])
                        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                            container.mux(packet)
            except OSError:  # the client went away first
                pass

    threading.Thread(target=send, daemon=True).start()
    return listener.getsockname()[1]


@pytest.fixture(scope="module")
def session(recording, tmp_path_factory, headless_chromium):
    """``live`` on the recording sent over TCP, silent for 4 s at 4 s and cut at 13 s, its
    dashboard read by headless Chromium as soon as the first interval is decided."""
    plan, frames = recording
    out = tmp_path_factory.mktemp("live") / "out"
    port = serve_mpegts(frames[:CUT], FPS, pause=(60, 4.0))  # a stall of 4 s at 4 s
    dashboard = Dashboard()
    url = dashboard.start()
    decided, seen = threading.Event(), {}

    def browse():
        if decided.wait(120) and CHROMIUM:
            profile = tmp_path_factory.mktemp("profile")
            seen["when"] = len(seen.get("rows", []))
            # a busy machine may start Chromium after the page's first events are due: look again, longer
            for wait_ms in (3000, 6000, 12000):
                seen["dom"] = headless_chromium(profile, f"--timeout={wait_ms}", "--dump-dom", url).stdout
                if '<div class="card ' in seen["dom"]:
                    break

    def on_interval(row):
        seen.setdefault("rows", []).append(row)
        decided.set()

    browser = threading.Thread(target=browse)
    browser.start()
    summary = live(
        f"tcp://127.0.0.1:{port}",
        out,
        drop=False,
        reconnects=1,
        stall=1.0,
        annotate_video=True,
        dashboard=dashboard,
        on_interval=on_interval,
        log=lambda _: None,
    )
    browser.join()
    dashboard.close()
    return plan, out, summary, seen


def test_a_stream_over_tcp_is_spotted_as_it_comes_and_a_cut_keeps_what_was_found(session):
    plan, out, summary, _ = session
    assert summary["frames"] == CUT and summary["dropped"] == 0 and summary["ended"] == "stream broke"
    assert any("1 reconnection(s) failed" in note for note in summary["notes"]), summary["notes"]
    assert summary["stalls"] == 1 and any("stalled" in note for note in summary["notes"])  # reported once, nothing lost
    frames = pd.read_csv(out / "frames.csv", keep_default_na=False)
    assert list(frames.columns) == ["frame", "time_s", "face_found", "score", "flags", "latency_s"]
    np.testing.assert_allclose(frames["time_s"], np.arange(CUT) / FPS, atol=2e-3)  # the stream's own timestamps
    assert frames["face_found"].all() and (frames["latency_s"] >= 0).all()
    rows = json.loads((out / "intervals.json").read_text())
    assert rows == summary["intervals"] and pd.read_csv(out / "intervals.csv")["onset_frame"].tolist() == [
        r["onset_frame"] for r in rows
    ]
    truth = [e for e in plan.expressions if e.offset < CUT]
    assert all(any(e.onset <= r["apex_frame"] <= e.offset and e.kind == r["kind"] for e in truth) for r in rows), (
        rows,
        truth,
    )
    found = {e for e in truth for r in rows if e.onset <= r["apex_frame"] <= e.offset}
    assert len(found) >= 2, (rows, truth)  # measured: the macro and one of the two micro before the cut
    # each decided within the spotter's lookahead (2.5 s) of its end, or at the cut
    assert all(r["decided_s"] - r["offset_s"] <= 2.5 + 1 / FPS or r["decided_s"] >= (CUT - 1) / FPS for r in rows)
    report = (out / "report.html").read_text()
    assert "<svg" in report and f"{CUT} frames at 15 fps" in report
    video = read_video(out / "annotated.mp4")
    assert len(video) == CUT
    banner = lambda t: video[t, 2:20, 40:200].reshape(-1, 3).mean(axis=0)  # noqa: E731
    for (
        row
    ) in rows:  # each interval's banner over its frames, its first (a macro's, decided 3 s later) and its apex alike
        for t in (row["onset_frame"], row["apex_frame"]):
            assert np.abs(banner(t) - KIND_RGB[row["kind"]]).max() < 40, (row, t, banner(t))
    assert np.abs(banner(0) - KIND_RGB["micro"]).max() > 60  # none where there is no interval


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it")
def test_the_dashboard_shows_each_interval_as_it_arrives_in_a_real_browser(session):
    _, _, summary, seen = session
    dom = seen["dom"]
    cards = dom.count('<div class="card ')
    assert 1 <= cards <= len(summary["intervals"]), dom  # those decided while the page was open, none invented
    first = summary["intervals"][0]
    assert f"{first['kind']} {first['onset_s']:.2f}-{first['offset_s']:.2f} s" in dom
    assert 'src="data:image/jpeg;base64,' in dom  # its apex face
    frames = int(dom.split('id="frames">')[1].split("<")[0])
    assert 0 < frames <= CUT and "http" not in dom.replace("http://127.0.0.1", "")  # no CDN, nothing from outside


@pytest.mark.slow  # a merkit process (about 5 s of imports) run until its first interval
def test_ctrl_c_leaves_complete_outputs_and_the_annotated_video(recording, tmp_path):
    plan, frames = recording
    video = tmp_path / "session.mkv"
    frames = np.concatenate([frames, frames])  # 32 s: a slow machine is still well inside it at the first interval
    write_video(video, frames, FPS)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    process = subprocess.Popen(
        [  # at the recording's own rate, so that the stream is still running when the first interval is written
            sys.executable,
            "-m",
            "merkit",
            "live",
            str(video),
            "--realtime",
            "--out",
            str(out),
            "--port",
            "0",
            "--annotate",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "intervals.json").exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)  # the first interval is written as soon as it is decided
        assert process.poll() is None, process.stdout.read()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "Dashboard: http://127.0.0.1:" in output and "interrupted after" in output
    table = pd.read_csv(out / "frames.csv")
    assert 0 < len(table) < len(frames) and table["frame"].tolist() == list(range(len(table)))
    rows = json.loads((out / "intervals.json").read_text())
    assert rows and len(pd.read_csv(out / "intervals.csv")) == len(rows)
    assert (out / "report.html").exists() and not list(out.glob(".*"))  # no temporary file left
    assert count_video_frames(out / "annotated.mp4") == len(table)  # every frame, the last ones flushed at the end


def test_a_source_that_is_neither_camera_stream_nor_file_is_refused_and_an_exposed_dashboard_warned_about(tmp_path):
    assert live_source("0").url == "/dev/video0" and live_source("udp://127.0.0.1:5000").kind == "network"
    with pytest.raises(ConfigError, match="neither a camera"):
        live_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(ConfigError, match="streams start with"):
        live_source("ftp://host/video")
    with pytest.raises(ConfigError, match="cannot spot a live stream"):
        live(__file__, tmp_path / "out", spotter="feature_difference")
    exposed = Dashboard("0.0.0.0")
    with pytest.warns(UserWarning, match="anyone who can reach this machine"):
        exposed.start()
    exposed.close()
