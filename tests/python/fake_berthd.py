"""A tiny stand-in for berthd: an HTTP server on 127.0.0.1 (port 0) in a thread that
answers canned responses and records every request, so tests can check exactly what the
client and the driver send.

    with FakeBerthd(token="secret") as fake:
        fake.add("GET", "/v1/instances/u1", 200, {...})      # answered once, in order
        fake.set("GET", "/v1/host", 200, HOST)                # answered every time
        ... fake.url ...
        fake.requests  -> [Request(method, path, query, headers, body, json)]
"""

import collections
import http.server
import json
import threading
import urllib.parse

Request = collections.namedtuple("Request", "method path query headers body json")

HOST = {
    "hostname": "berth-test-node",
    "vcpus": {"total": 8, "used": 2, "free": 6},
    "memory_mb": {"total": 16000, "used": 1024, "free": 14976},
    "disk_gb": {"total": 100, "used": 10, "free": 90},
    "disk_available_gb": 80,
    "kernel": "Linux 6.18.0",
    "architecture": "x86_64",
    "cgroup_version": "v1",
    "storage_driver": "overlay",
    "version": "0.3.1",
    "instances": 1,
}


def instance_json(uuid, name="instance-00000001", power_state=1, **extra):
    names = {0: "NOSTATE", 1: "RUNNING", 3: "PAUSED", 4: "SHUTDOWN", 6: "CRASHED",
             7: "SUSPENDED"}
    rec = {"uuid": uuid, "name": name, "image": "sha256:" + "ab" * 32,
           "image_ref": "cedef40a-ed67-4d10-800e-17455edce175",
           "flavor": {"vcpus": 1, "memory_mb": 512, "root_gb": 1, "extra_specs": {}},
           "power_state": power_state, "power_state_name": names[power_state],
           "task_state": None, "desired_state": "running", "pid": 1234, "oom_killed": False,
           "command": [], "metadata": {}, "created_at": "2024-01-01T00:00:00Z",
           "launched_at": "2024-01-01T00:00:01Z"}
    rec.update(extra)
    return rec


def error(code, message):
    return {"error": {"code": code, "message": message}}


class FakeBerthd(object):
    def __init__(self, token="fake-token"):
        self.token = token
        self.requests = []
        self._once = collections.defaultdict(collections.deque)
        self._always = {}
        self._lock = threading.Lock()
        self.delay = 0.0  # seconds to wait before answering (timeouts)
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urllib.parse.urlsplit(self.path)
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                req = Request(self.command, url.path, urllib.parse.parse_qs(url.query),
                              dict(self.headers), body, parsed)
                status, payload = fake._answer(req)
                if fake.delay:
                    threading.Event().wait(fake.delay)
                data = b""
                ctype = "application/json"
                if isinstance(payload, (bytes, str)):
                    data = payload.encode() if isinstance(payload, str) else payload
                    ctype = "text/plain"
                elif payload is not None:
                    data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    if data:
                        self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_DELETE = do_PUT = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def add(self, method, path, status, payload=None):
        """Answer the next such request (FIFO)."""
        with self._lock:
            self._once[(method, path)].append((status, payload))

    def set(self, method, path, status, payload=None):
        """Answer every such request (after any queued `add` answers)."""
        with self._lock:
            self._always[(method, path)] = (status, payload)

    def _answer(self, req):
        with self._lock:
            self.requests.append(req)
            if req.path != "/healthz" and self.token is not None:
                if req.headers.get("X-Auth-Token") != self.token:
                    return 401, error(401, "invalid token")
            queue = self._once.get((req.method, req.path))
            if queue:
                return queue.popleft()
            if (req.method, req.path) in self._always:
                return self._always[(req.method, req.path)]
        return 404, error(404, "no route for %s %s" % (req.method, req.path))

    def calls(self, method=None, path=None):
        """Recorded requests, optionally filtered; /v1/openapi.json excluded."""
        return [r for r in self.requests
                if (method is None or r.method == method) and
                (path is None or r.path == path) and r.path != "/v1/openapi.json"]
