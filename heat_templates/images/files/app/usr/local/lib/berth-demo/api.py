"""The API service, on API_PORT (8080). Jobs go into the SQL database and onto the queue;
the workers take them from there.

  GET  /status      the API, the database, the queue and the workers, as one JSON object
  POST /jobs        body: any text -> {"id": N}: stored (status queued) and queued
  GET  /jobs        the last 20 jobs;  GET /jobs/N: one
  GET  /healthz     ok

Addresses come from the user data the Heat template wrote: DB_HOST/DB_PORT/DB_PASSWORD,
MQ_HOST/MQ_PORT/MQ_PASSWORD."""

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import Redis, SqlClient, port, setting, wait_for

DB = SqlClient(setting("DB_HOST", "127.0.0.1"), port("DB_PORT", 7432), setting("DB_PASSWORD"))
MQ_ADDR = (setting("MQ_HOST", "127.0.0.1"), port("MQ_PORT", 6379))
MQ_PASSWORD = setting("MQ_PASSWORD")
QUEUE = setting("MQ_QUEUE", "berth-demo:jobs")
SCHEMA = ("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, text TEXT NOT NULL, "
          "status TEXT NOT NULL, result TEXT, worker TEXT, created REAL, done REAL)")
local = threading.local()


def mq():
    if getattr(local, "mq", None) is None:
        local.mq = Redis(*MQ_ADDR, password=MQ_PASSWORD, timeout=5)
    return local.mq


def log(msg):
    print(f"berth-api: {msg}", flush=True)


def check(fn):
    try:
        return {"ok": True, **fn()}
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return {"ok": False, "error": str(e)}


def status():
    db = check(lambda: {"address": DB.url, "jobs": dict(
        DB.query("SELECT status, COUNT(*) FROM jobs GROUP BY status")["rows"])})

    def queue():
        workers = mq().call("HGETALL", "berth-demo:workers") or []
        now = time.time()
        seen = {workers[i]: round(now - float(workers[i + 1]), 1)
                for i in range(0, len(workers), 2)}
        return {"address": "%s:%d" % MQ_ADDR, "queued": mq().call("LLEN", QUEUE),
                "workers_last_seen_s": seen}

    mqs = check(queue)
    return {"service": "api", "hostname": socket.gethostname(), "db": db, "mq": mqs,
            "workers": len(mqs.get("workers_last_seen_s", {})),
            "ok": db["ok"] and mqs["ok"]}


class Handler(BaseHTTPRequestHandler):
    def _send(self, code, obj):
        body = (json.dumps(obj, indent=1) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _fail(self, e):
        self._send(503, {"error": str(e)})

    def do_GET(self):
        path = self.path.rstrip("/") or "/"
        try:
            if path in ("/", "/status"):
                s = status()
                return self._send(200 if s["ok"] else 503, s)
            if path == "/healthz":
                return self._send(200, "ok")
            if path == "/jobs":
                rows = DB.query("SELECT id, text, status, result, worker FROM jobs "
                                "ORDER BY id DESC LIMIT 20")["rows"]
                keys = ("id", "text", "status", "result", "worker")
                return self._send(200, {"jobs": [dict(zip(keys, r)) for r in rows]})
            if path.startswith("/jobs/") and path[6:].isdigit():
                rows = DB.query("SELECT id, text, status, result, worker FROM jobs WHERE id = ?",
                                [int(path[6:])])["rows"]
                if not rows:
                    return self._send(404, {"error": "no such job"})
                return self._send(200, dict(zip(("id", "text", "status", "result", "worker"),
                                                rows[0])))
            self._send(404, {"error": "no such path"})
        except Exception as e:  # noqa: BLE001 - a tier is down: say which
            self._fail(e)

    def do_POST(self):
        if self.path.rstrip("/") != "/jobs":
            return self._send(404, {"error": "no such path"})
        n = int(self.headers.get("Content-Length") or 0)
        if n > 65536:
            return self._send(413, {"error": "at most 64 KiB"})
        text = self.rfile.read(n).decode(errors="replace")
        try:
            job_id = DB.query("INSERT INTO jobs (text, status, created) VALUES (?, 'queued', ?) "
                              "RETURNING id", [text, time.time()])["rows"][0][0]
            mq().call("LPUSH", QUEUE, job_id)
            self._send(201, {"id": job_id, "status": "queued"})
        except Exception as e:  # noqa: BLE001
            local.mq = None
            self._fail(e)

    def log_message(self, fmt, *args):
        sys.stdout.write("berth-api: %s %s\n" % (self.address_string(), fmt % args))


def main():
    p = port("API_PORT", 8080)
    log(f"database {DB.url}, queue {MQ_ADDR[0]}:{MQ_ADDR[1]}")
    server = ThreadingHTTPServer(("0.0.0.0", p), Handler)
    # Serve /status at once (it reports what is missing); make the schema when the database
    # answers.
    threading.Thread(target=lambda: wait_for("the database", lambda: DB.query(SCHEMA), log),
                     daemon=True).start()
    log(f"listening on :{p}")
    server.serve_forever()


if __name__ == "__main__":
    main()
