#!/usr/bin/env python3
"""A counting HTTP/1.1 reverse proxy for S3 benchmarks (Python stdlib only).

    countproxy.py --upstream 127.0.0.1:3900 [--listen 127.0.0.1:0]
                  [--control 127.0.0.1:0] [--ready-file FILE] [--log FILE]
                  [--latency-ms N]

Every client connection gets one thread and one keep-alive connection to the
upstream. Requests and responses are forwarded byte for byte (request line,
headers, bodies with their chunked framing), so signatures stay valid and
every client is measured the same way. `Expect: 100-continue` is relayed: the
body is sent once the upstream answers 100 (or after 3 s without an answer).

Counted per request: the HTTP method, the S3 operation it is (LIST, GET,
HEAD, PUT, COPY, MPU_*, DELETE, ...), the request body bytes (as sent, framing
included), response body bytes, status classes, and the peak number of
requests in flight at once.

--latency-ms N holds every request for N milliseconds before it is
forwarded, as a round trip to a distant server would: each connection waits
on its own, so N requests in flight on N connections wait at the same time.

The control endpoint (a second port) answers
    GET  /counts   the counters as JSON
    GET  /timeline every request since the last reset: [start, end, method,
                   S3 operation, target, status], times in seconds since the
                   epoch (start is when the request's head arrived)
    POST /reset    the counters as JSON, then zeroes them and the timeline
    POST /quit     stops the proxy
When --ready-file is given, `{"listen": PORT, "control": PORT}` is written to
it once both ports accept connections.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

BUF = 256 * 1024
MAX_HEAD = 128 * 1024


class Closed(Exception):
    pass


class Stream:
    """A socket with a read buffer."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()

    def fill(self) -> None:
        data = self.sock.recv(BUF)
        if not data:
            raise Closed()
        self.buf += data

    def read_until(self, sep: bytes, limit: int = MAX_HEAD) -> bytes:
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                end = i + len(sep)
                out = bytes(self.buf[:end])
                del self.buf[:end]
                return out
            if len(self.buf) > limit:
                raise ValueError("header section too large")
            start = max(0, len(self.buf) - len(sep) + 1)
            self.fill()

    def relay(self, n: int, dst: socket.socket) -> None:
        """Copy exactly n bytes to dst."""
        if self.buf:
            take = min(n, len(self.buf))
            dst.sendall(self.buf[:take])
            del self.buf[:take]
            n -= take
        if n <= 0:
            return
        mem = memoryview(bytearray(min(BUF, n)))
        while n > 0:
            got = self.sock.recv_into(mem, min(len(mem), n))
            if got == 0:
                raise Closed()
            dst.sendall(mem[:got])
            n -= got

    def relay_until_close(self, dst: socket.socket) -> int:
        total = len(self.buf)
        if self.buf:
            dst.sendall(self.buf)
            self.buf.clear()
        mem = memoryview(bytearray(BUF))
        while True:
            got = self.sock.recv_into(mem)
            if got == 0:
                return total
            dst.sendall(mem[:got])
            total += got

    def relay_chunked(self, dst: socket.socket) -> int:
        """Copy a chunked body, framing and trailers included; returns the
        bytes copied."""
        total = 0
        while True:
            line = self.read_until(b"\r\n", 64 * 1024)
            dst.sendall(line)
            total += len(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    t = self.read_until(b"\r\n", 64 * 1024)
                    dst.sendall(t)
                    total += len(t)
                    if t == b"\r\n":
                        return total
            self.relay(size + 2, dst)
            total += size + 2


def parse_head(head: bytes):
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0]
    headers: dict[str, str] = {}
    for ln in lines[1:]:
        if not ln:
            continue
        k, _, v = ln.partition(":")
        k = k.strip().lower()
        v = v.strip()
        headers[k] = headers[k] + ", " + v if k in headers else v
    return first, headers


def s3_op(method: str, target: str, headers: dict[str, str]) -> str:
    """Name the S3 operation of a path-style request."""
    parts = urlsplit(target)
    path = parts.path.lstrip("/")
    query = parts.query
    qkeys = {q.split("=", 1)[0] for q in query.split("&") if q}
    has_key = "/" in path and path.split("/", 1)[1] != ""
    if not path:
        return "LIST_BUCKETS" if method == "GET" else method + "_SERVICE"
    if not has_key:
        if method == "GET":
            if qkeys & {"location", "versioning", "acl", "policy", "cors", "lifecycle", "website", "tagging", "encryption", "object-lock"}:
                return "BUCKET_CONFIG"
            if "uploads" in qkeys:
                return "LIST_UPLOADS"
            return "LIST"
        if method == "HEAD":
            return "HEAD_BUCKET"
        if method == "PUT":
            return "CREATE_BUCKET" if not qkeys else "BUCKET_CONFIG"
        if method == "POST" and "delete" in qkeys:
            return "DELETE_OBJECTS"
        if method == "DELETE":
            return "DELETE_BUCKET"
        return method + "_BUCKET"
    if method == "GET":
        return "GET"
    if method == "HEAD":
        return "HEAD"
    if method == "PUT":
        if "partnumber" in {k.lower() for k in qkeys}:
            return "UPLOAD_PART_COPY" if "x-amz-copy-source" in headers else "UPLOAD_PART"
        if "x-amz-copy-source" in headers:
            return "COPY"
        if "tagging" in qkeys or "acl" in qkeys:
            return "OBJECT_CONFIG"
        return "PUT"
    if method == "POST":
        if "uploads" in qkeys:
            return "MPU_CREATE"
        if "uploadId" in qkeys:
            return "MPU_COMPLETE"
        return "POST"
    if method == "DELETE":
        return "MPU_ABORT" if "uploadId" in qkeys else "DELETE"
    return method


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.methods: dict[str, int] = {}
        self.ops: dict[str, int] = {}
        self.status: dict[str, int] = {}
        self.requests = 0
        self.req_body_bytes = 0
        self.resp_body_bytes = 0
        self.inflight = 0
        self.peak_inflight = 0
        self.connections = 0
        self.errors = 0
        self.expect_100 = 0
        self.since = time.time()
        self.timeline: list = []

    def snapshot(self) -> dict:
        return {
            "requests": self.requests,
            "methods": dict(sorted(self.methods.items())),
            "ops": dict(sorted(self.ops.items())),
            "status": dict(sorted(self.status.items())),
            "req_body_bytes": self.req_body_bytes,
            "resp_body_bytes": self.resp_body_bytes,
            "peak_inflight": self.peak_inflight,
            "connections": self.connections,
            "proxy_errors": self.errors,
            "expect_100_continue": self.expect_100,
            "seconds": round(time.time() - self.since, 3),
        }

    def begin(self, method: str, op: str):
        with self.lock:
            self.requests += 1
            self.methods[method] = self.methods.get(method, 0) + 1
            self.ops[op] = self.ops.get(op, 0) + 1
            self.inflight += 1
            if self.inflight > self.peak_inflight:
                self.peak_inflight = self.inflight

    def end(self, status: int, req_bytes: int, resp_bytes: int, entry=None):
        with self.lock:
            if entry is not None:
                self.timeline.append(entry)
            self.inflight = max(0, self.inflight - 1)
            self.req_body_bytes += req_bytes
            self.resp_body_bytes += resp_bytes
            if status:
                k = "%dxx" % (status // 100)
                self.status[k] = self.status.get(k, 0) + 1

    def add(self, name: str, n: int = 1):
        with self.lock:
            setattr(self, name, getattr(self, name) + n)


class Proxy:
    def __init__(self, upstream: tuple[str, int], counters: Counters, log=None, latency_s: float = 0.0):
        self.upstream = upstream
        self.latency_s = latency_s
        self.counters = counters
        self.log = log
        self.log_lock = threading.Lock()

    def connect_upstream(self) -> Stream:
        s = socket.create_connection(self.upstream)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Stream(s)

    def serve(self, client_sock: socket.socket) -> None:
        client_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = Stream(client_sock)
        up: Stream | None = None
        self.counters.add("connections")
        try:
            while True:
                try:
                    head = client.read_until(b"\r\n\r\n")
                except (Closed, ConnectionError, OSError):
                    return
                if up is not None and not up.buf and select.select([up.sock], [], [], 0)[0]:
                    # The upstream closed the idle connection: reconnect.
                    up.sock.close()
                    up = None
                if up is None:
                    up = self.connect_upstream()
                keep = self.exchange(head, client, up)
                if keep == "close-upstream":
                    up.sock.close()
                    up = None
                elif not keep:
                    return
        except (Closed, ConnectionError, OSError, ValueError):
            self.counters.add("errors")
        finally:
            for s in (client.sock, up.sock if up else None):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    def exchange(self, head: bytes, client: Stream, up: Stream):
        """One request and its response. Returns True to keep the client
        connection, "close-upstream" to keep it but reconnect upstream,
        False to close."""
        first, h = parse_head(head)
        method, target, version = (first.split(" ", 2) + ["", ""])[:3]
        op = s3_op(method, target, h)
        t0 = time.monotonic()
        wall0 = time.time()
        self.counters.begin(method, op)
        if self.latency_s:
            time.sleep(self.latency_s)
        req_bytes = resp_bytes = 0
        status = 0
        try:
            up.sock.sendall(head)
            chunked = "chunked" in h.get("transfer-encoding", "").lower()
            length = int(h.get("content-length", "0") or 0)
            has_body = chunked or length > 0
            expect = h.get("expect", "").lower() == "100-continue" and has_body
            body_sent = not has_body
            if expect:
                self.counters.add("expect_100")
                ready, _, _ = select.select([up.sock], [], [], 3.0) if not up.buf else ([up.sock], [], [])
                if not ready:
                    req_bytes = self.send_body(client, up, chunked, length)
                    body_sent = True
            elif has_body:
                req_bytes = self.send_body(client, up, chunked, length)
                body_sent = True
            while True:
                rhead = up.read_until(b"\r\n\r\n")
                rfirst, rh = parse_head(rhead)
                status = int(rfirst.split(" ", 2)[1])
                client.sock.sendall(rhead)
                if 100 <= status < 200 and status != 101:
                    if not body_sent:
                        req_bytes = self.send_body(client, up, chunked, length)
                        body_sent = True
                    continue
                break
            if method == "HEAD" or status in (204, 304):
                pass
            elif "chunked" in rh.get("transfer-encoding", "").lower():
                resp_bytes = up.relay_chunked(client.sock)
            elif "content-length" in rh:
                resp_bytes = int(rh["content-length"])
                up.relay(resp_bytes, client.sock)
            else:
                resp_bytes = up.relay_until_close(client.sock)
                return False
            if not body_sent:
                # A final answer before the body was asked for: the client
                # may or may not send it now, so this connection is done.
                return False
            if rh.get("connection", "").lower() == "close" or h.get("connection", "").lower() == "close":
                return False
            if version == "HTTP/1.0" and h.get("connection", "").lower() != "keep-alive":
                return False
            return True
        finally:
            self.counters.end(status, req_bytes, resp_bytes, (round(wall0, 4), round(time.time(), 4), method, op, target, status))
            if self.log:
                line = "%.3f\t%s\t%s\t%s\t%d\t%d\t%d\t%.1f\n" % (
                    time.time(), method, op, target, status, req_bytes, resp_bytes, (time.monotonic() - t0) * 1000)
                with self.log_lock:
                    self.log.write(line)
                    self.log.flush()

    @staticmethod
    def send_body(client: Stream, up: Stream, chunked: bool, length: int) -> int:
        if chunked:
            return client.relay_chunked(up.sock)
        client.relay(length, up.sock)
        return length


def hostport(s: str) -> tuple[str, int]:
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the S3 server")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to accept clients on (default 127.0.0.1:0)")
    ap.add_argument("--control", default="127.0.0.1:0", help="HOST:PORT of the control endpoint (default 127.0.0.1:0)")
    ap.add_argument("--ready-file", help="write the chosen ports here as JSON once listening")
    ap.add_argument("--log", help="append one tab-separated line per request to this file")
    ap.add_argument("--latency-ms", type=float, default=0.0,
                    help="hold every request this many milliseconds before forwarding it (default 0)")
    args = ap.parse_args(argv)
    if args.latency_ms < 0:
        ap.error("--latency-ms must be 0 or more")

    counters = Counters()
    log = open(args.log, "a", buffering=1) if args.log else None
    proxy = Proxy(hostport(args.upstream), counters, log, args.latency_ms / 1000.0)

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(hostport(args.listen))
    lsock.listen(1024)

    stop = threading.Event()

    class Control(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, obj):
            body = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.startswith("/counts"):
                with counters.lock:
                    snap = counters.snapshot()
                self._send(snap)
            elif self.path.startswith("/timeline"):
                with counters.lock:
                    tl = list(counters.timeline)
                self._send(tl)
            else:
                self.send_error(404)

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            if self.path.startswith("/reset"):
                with counters.lock:
                    snap = counters.snapshot()
                    inflight = counters.inflight
                    counters.reset()
                    counters.inflight = inflight
                self._send(snap)
            elif self.path.startswith("/quit"):
                self._send({"ok": True})
                stop.set()
            else:
                self.send_error(404)

        def log_message(self, *a):
            pass

    control = ThreadingHTTPServer(hostport(args.control), Control)
    control.daemon_threads = True
    threading.Thread(target=control.serve_forever, daemon=True).start()

    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"listen": lsock.getsockname()[1], "control": control.server_address[1], "pid": os.getpid(),
                       "latency_ms": args.latency_ms}, f)
        os.replace(tmp, args.ready_file)

    def accept_loop():
        while not stop.is_set():
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=proxy.serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    lsock.close()
    control.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
