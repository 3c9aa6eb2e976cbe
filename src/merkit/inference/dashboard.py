"""The live dashboard: a local web page that shows a :func:`merkit.inference.live.live` session.

A small HTTP server (the standard library's ``ThreadingHTTPServer``) on ``127.0.0.1`` and a free
port serves the page and its script (``static/``, shipped inside merkit: no CDN, works offline),
the current frame with the face box and landmarks (``/frame.jpg``, encoded when asked), and the
session's events as Server-Sent Events (``/events``): ``status`` (frames, fps, latency, dropped
frames), ``scores`` (each frame's score over its threshold as it becomes known), ``interval``
(kind, times, class probabilities, apex face) and ``note`` (stalls, breaks). A page opened late
gets the intervals found so far and the last scores first. Another ``host`` than the loopback address exposes the
camera to the network: it is allowed, with a warning.
"""

from __future__ import annotations

import ipaddress
import json
import queue
import threading
import warnings
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from urllib.parse import urlsplit

import cv2
import numpy as np

from merkit.errors import ConfigError
from merkit.spotting import KIND_HEX

STATIC = {"/": ("live.html", "text/html; charset=utf-8"), "/live.js": ("live.js", "text/javascript; charset=utf-8")}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only listens to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Dashboard:
    """The page of a live session: :meth:`start` it, then :meth:`publish` events and
    :meth:`set_frame` frames from the session; :meth:`close` at the end."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, title: str = "merkit live", clients: int = 8):
        self.host, self.port, self.title, self.most = host, port, title, clients
        self.clients: list[queue.Queue] = []
        self.lock = threading.Lock()
        self.intervals: list[dict] = []  # for a page opened late
        self.status: dict = {}
        self.scores: deque = deque(maxlen=6000)  # the last scores, for a page opened late (30 s at 200 fps)
        self.frame: tuple[np.ndarray, np.ndarray | None] | None = None
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host if ':' not in self.host else f'[{self.host}]'}:{self.port}/"

    def start(self) -> str:
        """Listen (a free port if ``port`` is 0) and serve from a daemon thread; returns the page's URL."""
        if not is_loopback(self.host):
            warnings.warn(
                f"The dashboard listens on {self.host}: anyone who can reach this machine on port "
                f"{self.port or '(free)'} sees the camera. Leave out --host to keep it on 127.0.0.1.",
                stacklevel=2,
            )
        dashboard = self

        class Handler(_Handler):
            pass

        Handler.dashboard = dashboard
        try:
            self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as error:
            raise ConfigError(
                f"The dashboard cannot listen on {self.host}:{self.port} ({error}); pick another --port, "
                "or 0 for a free one."
            ) from error
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name="merkit-live-dashboard"
        ).start()
        return self.url

    def publish(self, kind: str, data: dict) -> None:
        """Send an event to every open page (a page too slow to take it misses it)."""
        message = f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()
        with self.lock:  # a page opening now gets it either in its backlog or as an event, never twice
            if kind == "interval":
                self.intervals.append(data)
            elif kind == "status":
                self.status = data
            elif kind == "scores":
                self.scores.extend(data["points"])
            for client in self.clients:
                try:
                    client.put_nowait(message)
                except queue.Full:
                    pass

    def set_frame(self, frame: np.ndarray, landmarks: np.ndarray | None) -> None:
        """The current uint8 (H, W, 3) RGB frame and its (68, 2) landmarks (None: no face)."""
        self.frame = (frame, landmarks)

    def frame_jpeg(self) -> bytes | None:
        """The current frame with the face box and landmarks, as JPEG (None before the first)."""
        if self.frame is None:
            return None
        from merkit.inference.analyze import annotate

        frame, landmarks = self.frame
        _, data = cv2.imencode(
            ".jpg", cv2.cvtColor(annotate(frame, landmarks), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80]
        )
        return data.tobytes()

    def page(self, name: str) -> bytes:
        text = files("merkit.inference").joinpath("static", name).read_text(encoding="utf-8")
        for kind, colour in KIND_HEX.items():
            text = text.replace(f"__{kind.upper()}__", colour)
        return text.replace("__TITLE__", self.title).encode()

    def close(self) -> None:
        """End every page's event stream and stop listening."""
        with self.lock:
            for client in self.clients:
                client.put(None)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    dashboard: Dashboard
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002  (the base class's name)
        pass

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        path = urlsplit(self.path).path
        if path in STATIC:
            name, kind = STATIC[path]
            self._send(200, kind, self.dashboard.page(name))
        elif path == "/frame.jpg":
            data = self.dashboard.frame_jpeg()
            self._send(200, "image/jpeg", data) if data else self._send(204, "text/plain", b"")
        elif path == "/events":
            self._events()
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found")

    def _events(self) -> None:
        dashboard = self.dashboard
        client: queue.Queue = queue.Queue(maxsize=1000)
        with dashboard.lock:
            if len(dashboard.clients) >= dashboard.most:
                self._send(503, "text/plain; charset=utf-8", b"too many pages open")
                return
            dashboard.clients.append(client)
            backlog = [
                ("scores", {"points": list(dashboard.scores)}),
                *(("interval", row) for row in dashboard.intervals),
            ]
            backlog += [("status", dashboard.status)] if dashboard.status else []
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(
                b"retry: 1000\n\n" + b"".join(f"event: {k}\ndata: {json.dumps(v)}\n\n".encode() for k, v in backlog)
            )
            self.wfile.flush()
            while True:
                try:
                    message = client.get(timeout=10)
                except queue.Empty:
                    message = b": still here\n\n"
                if message is None:
                    return
                self.wfile.write(message)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            with dashboard.lock:
                dashboard.clients.remove(client)
