"""The SQL database: SQLite behind a small HTTP server, on DB_PORT (7432).

  POST /query  {"sql": "...", "params": [...]}  ->  {"rows": [[...], ...], "rowcount": N}
  GET  /healthz                                  ->  ok

One statement per request, run under one lock (SQLite serialises writers anyway) and
committed at once. With DB_PASSWORD set, /query needs it in X-DB-Password. The file is
DB_FILE (/var/lib/berth-demo/db.sqlite3), on the instance's own disk."""

import hmac
import json
import os
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import port, setting

DB_FILE = setting("DB_FILE", "/var/lib/berth-demo/db.sqlite3")
PASSWORD = setting("DB_PASSWORD")
MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    db = None
    lock = threading.Lock()

    def _send(self, code, obj):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/healthz":
            self._send(200, "ok")
        else:
            self._send(404, {"error": "no such path"})

    def do_POST(self):
        if self.path != "/query":
            return self._send(404, {"error": "no such path"})
        if PASSWORD and not hmac.compare_digest(self.headers.get("X-DB-Password", ""), PASSWORD):
            return self._send(401, {"error": "wrong or missing X-DB-Password"})
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            return self._send(413, {"error": "body too large"})
        try:
            req = json.loads(self.rfile.read(n))
            sql, params = req["sql"], req.get("params", [])
            with self.lock:
                cur = self.db.execute(sql, params)
                rows = cur.fetchall()
                self.db.commit()
            self._send(200, {"rows": rows, "rowcount": cur.rowcount})
        except (ValueError, KeyError, TypeError) as e:
            self._send(400, {"error": f"bad request: {e}"})
        except sqlite3.Error as e:
            self._send(400, {"error": f"sqlite: {e}"})

    def log_message(self, fmt, *args):
        sys.stdout.write("berth-db: %s %s\n" % (self.address_string(), fmt % args))


def main():
    os.makedirs(os.path.dirname(DB_FILE), exist_ok=True)
    Handler.db = sqlite3.connect(DB_FILE, check_same_thread=False)
    Handler.db.execute("PRAGMA journal_mode=WAL")
    p = port("DB_PORT", 7432)
    server = ThreadingHTTPServer(("0.0.0.0", p), Handler)
    print(f"berth-db: sqlite {sqlite3.sqlite_version} at {DB_FILE}, listening on :{p}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
