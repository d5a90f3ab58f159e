"""Real archive servers for tests: moto's S3 server and Azurite, on free loopback ports,
and a fault-injecting reverse proxy that works across processes (git spawns ours)."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE_ACCOUNT = "devstoreaccount1"


class Server:
    def __init__(
        self, cmd: list[str], pattern: str, stream: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, cwd=cwd
        )
        found: list[str] = []
        ready = threading.Event()

        def drain(pipe: object, watch: bool) -> None:
            for line in pipe:  # type: ignore[attr-defined]
                if watch and not ready.is_set():
                    m = re.search(pattern, line)
                    if m:
                        found.append(m.group(1))
                        ready.set()

        for name in ("stdout", "stderr"):
            threading.Thread(target=drain, args=(getattr(self.proc, name), name == stream), daemon=True).start()
        if not ready.wait(30):
            self.stop()
            raise RuntimeError(f"{cmd[0]} did not start: no line matching {pattern!r}")
        self.url = found[0]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_moto() -> Server:
    return Server(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
        r"Running on (http://127\.0\.0\.1:\d+)",
        "stderr",
        env={"S3_UPLOAD_PART_MIN_SIZE": str(1 << 20)},
    )


def azurite_binary() -> str:
    candidates = [
        os.environ.get("AZURITE_BLOB", ""),
        str(ROOT / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"),
        shutil.which("azurite-blob") or "",
    ]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    raise RuntimeError(
        "Azurite is not installed: run ./install.sh --dev (it runs "
        "`npm install --prefix .cache/azurite azurite`), or set AZURITE_BLOB"
    )


def start_azurite(workdir: Path) -> Server:
    return Server(
        [
            azurite_binary(),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--inMemoryPersistence",
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ],
        r"listens on (http://127\.0\.0\.1:\d+)",
        "stdout",
        cwd=workdir,  # Azurite writes its debug and lock files into the working directory
    )


def azurite_connection_string(blob_url: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={blob_url}/{AZURITE_ACCOUNT};"
    )


def moto_reset(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).read()


@dataclass
class Rule:
    method: str  # "*" for any
    path: str  # regex searched in the request path
    # "500", "503", "reset", "delay:SECONDS"; on the response body "truncate" (half of it, then
    # the connection closes) or "corrupt" (one byte flipped); on the request body sent upstream
    # "truncate-request" (half of it, Content-Length to match) or "corrupt-request".
    action: str
    times: int = 1  # how many matching requests it hits; -1 for all
    hits: int = 0


@dataclass
class FaultProxy:
    """A reverse proxy on loopback; requests matching a rule get the rule's fault."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)  # of each request, in order
    connections: int = 0  # accepted, whether or not a request followed

    def start(self) -> FaultProxy:
        proxy = self
        host, port = self.upstream.removeprefix("http://").split(":")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.requests.append(f"{self.command} {self.path}")
                proxy.headers.append(dict(self.headers.items()))
                rule = proxy._match(self.command, self.path)
                if rule is not None:
                    if rule.action == "reset":
                        self.connection.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                        )
                        self.close_connection = True
                        self.connection.close()
                        return
                    if rule.action in ("500", "503"):
                        msg = b"<Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>"
                        self.send_response(int(rule.action))
                        self.send_header("Content-Length", str(len(msg)))
                        self.send_header("Content-Type", "application/xml")
                        self.end_headers()
                        self.wfile.write(msg)
                        return
                    if rule.action.startswith("delay:"):
                        time.sleep(float(rule.action.split(":")[1]))
                if rule is not None and body and rule.action == "corrupt-request":
                    body = body[: len(body) // 2] + bytes([body[len(body) // 2] ^ 0xFF]) + body[len(body) // 2 + 1 :]
                if rule is not None and body and rule.action == "truncate-request":
                    body = body[: len(body) // 2]
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
                if body or length:
                    headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if rule is not None and rule.action == "corrupt" and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                # A HEAD response has no body but reports the object's length: pass it through.
                length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
                self.send_header("Content-Length", length)
                self.end_headers()
                if rule is not None and rule.action == "truncate" and data:
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True
                    return
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        class Server(ThreadingHTTPServer):
            def get_request(self) -> tuple[socket.socket, object]:
                conn = super().get_request()
                proxy.connections += 1
                return conn

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def _match(self, method: str, path: str) -> Rule | None:
        for rule in self.rules:
            if rule.times != -1 and rule.hits >= rule.times:
                continue
            if rule.method in ("*", method) and re.search(rule.path, path):
                rule.hits += 1
                return rule
        return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class RecordingServer:
    """A loopback server that records every connection and request and serves canned answers:
    a stand-in for an attacker's host, or for a token service. `answers` maps a path regex to
    (status, JSON body); anything else gets 404."""

    answers: dict[str, tuple[int, object]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    connections: int = 0

    def start(self) -> RecordingServer:
        import json

        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                recorder.requests.append((self.command, self.path, dict(self.headers.items())))
                status, body = 404, b""
                for pattern, (code, obj) in recorder.answers.items():
                    if re.search(pattern, self.path):
                        status, body = code, json.dumps(obj).encode()
                        break
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        class Server(ThreadingHTTPServer):
            def get_request(self) -> tuple[socket.socket, object]:
                conn = super().get_request()
                recorder.connections += 1
                return conn

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentServer:
    """Accepts connections on a free loopback port and never answers: a hung archive endpoint."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self._held.append(conn)  # read nothing, answer nothing, keep it open

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self.sock.close()
