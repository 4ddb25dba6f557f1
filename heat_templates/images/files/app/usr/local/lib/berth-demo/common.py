"""What the API service, the workers and the database server share: settings from the
environment (berth-entry put the user data there), a client for the SQL server and a
minimal Redis (RESP) client for the queue. Standard library only: the image holds
python3-minimal and libpython3.11-stdlib from Debian and nothing else."""

import json
import os
import socket
import time
import urllib.error
import urllib.request


def setting(name, default=""):
    return os.environ.get(name, default)


def port(name, default):
    return int(setting(name, str(default)))


class SqlClient:
    """The database server's protocol: POST /query {"sql", "params"} -> {"rows", "rowcount"}."""

    def __init__(self, host, port_, password=""):
        self.url = f"http://{host}:{port_}/query"
        self.password = password

    def query(self, sql, params=(), timeout=5):
        body = json.dumps({"sql": sql, "params": list(params)}).encode()
        req = urllib.request.Request(self.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "X-DB-Password": self.password})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"database: {e.code} {e.read().decode(errors='replace')}") from e


class RedisError(Exception):
    pass


class Redis:
    """Just enough RESP for a job queue: one connection, commands as lists of strings."""

    def __init__(self, host, port_, password="", timeout=10):
        self.addr = (host, port_)
        self.password = password
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    def _connect(self):
        self.sock = socket.create_connection(self.addr, timeout=self.timeout)
        self.buf = b""
        if self.password:
            self._send(["AUTH", self.password])

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RedisError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RedisError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError(f"bad reply {line!r}")

    def _send(self, args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def call(self, *args):
        if self.sock is None:
            self._connect()
        try:
            return self._send(args)
        except (OSError, RedisError):
            self.close()
            raise


def wait_for(what, probe, log, delay=1.0, max_delay=10.0):
    """Calls probe() until it succeeds: the tiers may start in any order."""
    while True:
        try:
            return probe()
        except Exception as e:  # noqa: BLE001 - any failure means "not yet"
            log(f"waiting for {what}: {e}")
            time.sleep(delay)
            delay = min(delay * 2, max_delay)
