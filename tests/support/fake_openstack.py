#!/usr/bin/python3
"""A loopback Keystone v3 + Glance v2 for the glance_adapter and berthd tests.

Real HTTP (stdlib http.server, one thread per connection) on 127.0.0.1, speaking the parts
of both APIs that berthd uses, with faults that tests switch on through /_control:

  POST /_control/images  {"id", "name", "container_format", "disk_format", "data_file",
                          "properties": {...}, "os_hash_value" / "checksum" (override: a
                          wrong hash), "status", "owner_token" (only that token may read it)}
  POST /_control/faults  {"method", "path" (regex on the path), "count" (how many matching
                          requests it hits; default 1), "status" (answer this status),
                          "drop_after" (send this many body bytes, then close the
                          connection), "delay_ms" (per 64 KiB chunk of body)}
  POST /_control/token_ttl {"seconds": N}   lifetime of tokens issued from now on
  POST /_control/revoke  {"token": "..."}   the token stops validating
  GET  /_control/stats   {"requests": {"GET /v2/images/x/file": 2, ...},
                          "ranges": [...], "uploads": {image id: sha256 of the bytes}}
  POST /_control/reset_stats

Users: "berth"/"berth-pass" (role admin, project service) and "demo"/"demo-pass" (role
member, project demo). The catalog's image endpoint is this server (public and internal,
region RegionOne). Image data lives under --store; metadata in memory.

Run: fake_openstack.py --store DIR [--port 0]; prints "listening on 127.0.0.1:PORT".
"""

import argparse
import datetime
import hashlib
import http.server
import json
import os
import re
import shutil
import socketserver
import sys
import threading
import time
import uuid

LOCK = threading.Lock()
STATE = {
    "images": {},  # id -> metadata dict (with "_file", "_owner_token")
    "tokens": {},  # token -> {"user", "project", "roles", "expires"}
    "faults": [],
    "requests": {},
    "ranges": [],
    "uploads": {},
    "ttl": 3600,
}
USERS = {
    "berth": {"password": "berth-pass", "project": "service", "roles": ["admin"]},
    "demo": {"password": "demo-pass", "project": "demo", "roles": ["member"]},
}
STORE = None
PORT = 0


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def hashes(path):
    md5 = hashlib.md5()
    sha = hashlib.sha512()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return md5.hexdigest(), sha.hexdigest(), size


def public(img):
    return {k: v for k, v in img.items() if not k.startswith("_")}


def catalog():
    url = "http://127.0.0.1:%d" % PORT
    return [{"type": "image", "name": "glance", "id": "img",
             "endpoints": [
                 {"interface": "public", "region_id": "RegionOne", "region": "RegionOne",
                  "url": url, "id": "e1"},
                 {"interface": "internal", "region_id": "RegionOne", "region": "RegionOne",
                  "url": url + "/", "id": "e2"},
                 {"interface": "public", "region_id": "RegionTwo", "region": "RegionTwo",
                  "url": "http://127.0.0.1:9/", "id": "e3"}]},
            {"type": "identity", "name": "keystone", "id": "id",
             "endpoints": [{"interface": "public", "region_id": "RegionOne",
                            "url": url + "/v3", "id": "e4"}]}]


def token_body(tok, info, with_catalog=True):
    body = {"token": {
        "methods": ["password"],
        "expires_at": iso(info["expires"]),
        "issued_at": iso(now()),
        "user": {"id": info["user"] + "-id", "name": info["user"],
                 "domain": {"id": "default", "name": "Default"}},
    }}
    # As Keystone: an unscoped token has no project, no roles and no catalog.
    if info["project"] is None:
        return body
    body["token"]["project"] = {"id": info["project"] + "-id", "name": info["project"],
                                "domain": {"id": "default", "name": "Default"}}
    body["token"]["roles"] = [{"id": r + "-id", "name": r} for r in info["roles"]]
    if with_catalog:
        body["token"]["catalog"] = catalog()
    return body


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_OPENSTACK_LOG"):
            sys.stderr.write("fake_openstack: " + fmt % args + "\n")

    # -- plumbing -----------------------------------------------------------------------

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body=b"", ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status, message):
        self._send(status, {"error": {"code": status, "message": message}})

    def _fault(self):
        """The first armed fault matching this request (its count decremented)."""
        path = self.path.split("?")[0]
        with LOCK:
            for f in STATE["faults"]:
                if f.get("method", self.command) != self.command:
                    continue
                if not re.search(f.get("path", ""), path):
                    continue
                if f.get("count", 1) <= 0:
                    continue
                f["count"] = f.get("count", 1) - 1
                return dict(f)
        return None

    def _count(self):
        key = self.command + " " + self.path.split("?")[0]
        with LOCK:
            STATE["requests"][key] = STATE["requests"].get(key, 0) + 1

    def _token(self, header="X-Auth-Token"):
        tok = self.headers.get(header)
        with LOCK:
            info = STATE["tokens"].get(tok)
        if not info or info["expires"] <= now():
            return None, None
        return tok, info

    def _dispatch(self):
        self._count()
        path = self.path.split("?")[0]
        if path.startswith("/_control/"):
            return self._control(path)
        fault = self._fault()
        if fault and "status" in fault:
            self._body()
            return self._error(fault["status"], "injected fault")
        if path == "/v3/auth/tokens":
            return self._keystone()
        if path.startswith("/v2/"):
            return self._glance(path, fault)
        return self._error(404, "no route " + path)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = lambda self: self._dispatch()

    # -- control ------------------------------------------------------------------------

    def _control(self, path):
        body = json.loads(self._body() or b"{}")
        if path == "/_control/images":
            src = body.pop("data_file", None)
            img_id = body.get("id") or str(uuid.uuid4())
            img = {"id": img_id, "name": body.get("name", img_id), "status": "queued",
                   "container_format": body.get("container_format"),
                   "disk_format": body.get("disk_format"), "visibility": "public",
                   "created_at": iso(now()), "updated_at": iso(now()), "size": None,
                   "checksum": None, "os_hash_algo": None, "os_hash_value": None}
            img.update(body.get("properties", {}))
            if src:
                dst = os.path.join(STORE, img_id)
                shutil.copyfile(src, dst)
                md5, sha, size = hashes(dst)
                img.update({"_file": dst, "status": "active", "size": size, "checksum": md5,
                            "os_hash_algo": "sha512", "os_hash_value": sha})
            for k in ("os_hash_value", "os_hash_algo", "checksum", "status"):
                if k in body:
                    img[k] = body[k]
            if "owner_token" in body:
                img["_owner_token"] = body["owner_token"]
            with LOCK:
                STATE["images"][img_id] = img
            return self._send(201, public(img))
        if path == "/_control/faults":
            with LOCK:
                STATE["faults"].append(body)
            return self._send(204)
        if path == "/_control/token_ttl":
            with LOCK:
                STATE["ttl"] = body["seconds"]
            return self._send(204)
        if path == "/_control/revoke":
            with LOCK:
                STATE["tokens"].pop(body["token"], None)
            return self._send(204)
        if path == "/_control/issue":
            # A token for a user without the password dance (tests of berthd's auth).
            tok = self._issue(body["user"])
            return self._send(201, {"token": tok})
        if path == "/_control/stats":
            with LOCK:
                return self._send(200, {"requests": STATE["requests"],
                                        "ranges": STATE["ranges"],
                                        "uploads": STATE["uploads"],
                                        "images": {k: public(v)
                                                   for k, v in STATE["images"].items()}})
        if path == "/_control/reset_stats":
            with LOCK:
                STATE["requests"].clear()
                STATE["ranges"].clear()
                STATE["faults"].clear()
            return self._send(204)
        return self._error(404, "no control " + path)

    # -- keystone -----------------------------------------------------------------------

    def _issue(self, user, scoped=True):
        u = USERS[user]
        tok = "tok-" + uuid.uuid4().hex
        with LOCK:
            STATE["tokens"][tok] = {
                "user": user, "project": u["project"] if scoped else None,
                "roles": u["roles"] if scoped else [],
                "expires": now() + datetime.timedelta(seconds=STATE["ttl"])}
        return tok

    def _keystone(self):
        if self.command == "POST":
            try:
                auth = json.loads(self._body())["auth"]
                methods = auth["identity"]["methods"]
            except (ValueError, KeyError, TypeError):
                return self._error(400, "malformed auth request")
            if methods == ["password"]:
                u = auth["identity"]["password"]["user"]
                user = USERS.get(u.get("name"))
                if not user or user["password"] != u.get("password"):
                    return self._error(401, "The request you have made requires authentication.")
                tok = self._issue(u["name"])
            elif methods == ["token"]:
                old = auth["identity"]["token"]["id"]
                with LOCK:
                    info = STATE["tokens"].get(old)
                if not info or info["expires"] <= now():
                    return self._error(401, "The request you have made requires authentication.")
                # As Keystone: without a scope in the request the new token is unscoped;
                # the user's own project (by id or name) scopes it.
                project = (auth.get("scope") or {}).get("project")
                user_project = USERS[info["user"]]["project"]
                if project and project.get("id") not in (None, user_project + "-id") or \
                        project and project.get("name") not in (None, user_project):
                    return self._error(401, "no role on that project")
                tok = self._issue(info["user"], scoped=bool(project))
            else:
                return self._error(400, "unsupported methods %s" % methods)
            with LOCK:
                info = STATE["tokens"][tok]
            return self._send(201, token_body(tok, info), headers={"X-Subject-Token": tok})
        if self.command == "GET":
            svc, svc_info = self._token()
            if not svc:
                return self._error(401, "The request you have made requires authentication.")
            # As Keystone's policy: an admin validates any token, any token itself.
            if "admin" not in svc_info["roles"] and \
                    self.headers.get("X-Subject-Token") != svc:
                return self._error(403, "You are not authorized to perform the requested action")
            subject, info = self._token("X-Subject-Token")
            if not subject:
                return self._error(404, "Could not find token")
            return self._send(200, token_body(subject, info, "nocatalog" not in self.path),
                              headers={"X-Subject-Token": subject})
        return self._error(405, "method not allowed")

    # -- glance -------------------------------------------------------------------------

    def _glance(self, path, fault):
        tok, info = self._token()
        if not tok:
            self._body()
            return self._error(401, "Authentication required")
        m = re.fullmatch(r"/v2/images(?:/([^/]+))?(/file)?", path)
        if not m:
            return self._error(404, "no route " + path)
        img_id, is_file = m.group(1), m.group(2)
        if img_id is None:
            if self.command == "GET":
                return self._list()
            if self.command == "POST":
                return self._create()
            return self._error(405, "method not allowed")
        with LOCK:
            img = STATE["images"].get(img_id)
        if img is None:
            self._body()
            return self._error(404, "No image found with ID %s" % img_id)
        if img.get("_owner_token") and img["_owner_token"] != tok:
            self._body()
            return self._error(403, "You are not authorized to access image %s" % img_id)
        if is_file and self.command == "GET":
            return self._download(img, fault)
        if is_file and self.command == "PUT":
            return self._upload(img)
        if self.command == "GET":
            return self._send(200, public(img))
        if self.command == "PATCH":
            ops = json.loads(self._body())
            with LOCK:
                for op in ops:
                    key = op["path"].lstrip("/")
                    if op["op"] in ("add", "replace"):
                        img[key] = op["value"]
                    elif op["op"] == "remove":
                        img.pop(key, None)
                img["updated_at"] = iso(now())
            return self._send(200, public(img))
        return self._error(405, "method not allowed")

    def _list(self):
        q = {}
        if "?" in self.path:
            for part in self.path.split("?", 1)[1].split("&"):
                k, _, v = part.partition("=")
                q[k] = v
        marker = q.pop("marker", None)
        with LOCK:
            imgs = sorted(STATE["images"].values(), key=lambda i: i["id"])
        out = [public(i) for i in imgs
               if all(str(i.get(k)) == v for k, v in q.items())]
        if marker:
            out = [i for i in out if i["id"] > marker]
        page = out[:2]  # small pages, so clients must follow "next"
        body = {"images": page, "first": "/v2/images", "schema": "/v2/schemas/images"}
        if len(out) > 2:
            rest = "&".join("%s=%s" % kv for kv in q.items())
            body["next"] = "/v2/images?marker=%s%s" % (page[-1]["id"], "&" + rest if rest else "")
        return self._send(200, body)

    def _create(self):
        body = json.loads(self._body())
        img_id = body.get("id") or str(uuid.uuid4())
        with LOCK:
            if img_id in STATE["images"]:
                return self._error(409, "Image with identifier %s already exists!" % img_id)
            img = {"id": img_id, "name": None, "status": "queued", "container_format": None,
                   "disk_format": None, "visibility": "shared", "size": None, "checksum": None,
                   "os_hash_algo": None, "os_hash_value": None, "created_at": iso(now()),
                   "updated_at": iso(now())}
            img.update(body)
            STATE["images"][img_id] = img
        return self._send(201, public(img))

    def _download(self, img, fault):
        if img["status"] != "active" or "_file" not in img:
            return self._send(204)
        size = os.path.getsize(img["_file"])
        start = 0
        rng = self.headers.get("Range")
        if rng:
            with LOCK:
                STATE["ranges"].append(rng)
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            if m and not (fault and fault.get("ignore_range")):
                start = int(m.group(1))
        status = 206 if start else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size - start))
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        self.send_header("Content-MD5", img.get("checksum") or "")
        self.end_headers()
        drop = fault.get("drop_after") if fault else None
        delay = (fault.get("delay_ms") or 0) / 1000.0 if fault else 0
        sent = 0
        with open(img["_file"], "rb") as f:
            f.seek(start)
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                if drop is not None and sent + len(chunk) > drop:
                    self.wfile.write(chunk[:max(0, drop - sent)])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                    return
                sent += len(chunk)
                if delay:
                    time.sleep(delay)

    def _upload(self, img):
        if img["status"] != "queued":
            self._body()
            return self._error(409, "Image status transition from %s to saving is not allowed"
                               % img["status"])
        if not img.get("container_format") or not img.get("disk_format"):
            self._body()
            return self._error(400, "Properties container_format, disk_format must be set "
                               "prior to saving data.")
        dst = os.path.join(STORE, img["id"])
        n = int(self.headers.get("Content-Length") or 0)
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        sha = hashlib.sha256()
        with open(dst, "wb") as f:
            if chunked:
                while True:
                    line = self.rfile.readline().strip()
                    size = int(line.split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    data = self.rfile.read(size)
                    self.rfile.readline()
                    f.write(data)
                    sha.update(data)
            else:
                left = n
                while left:
                    data = self.rfile.read(min(left, 1 << 20))
                    if not data:
                        break
                    f.write(data)
                    sha.update(data)
                    left -= len(data)
        md5, sha512, size = hashes(dst)
        with LOCK:
            img.update({"_file": dst, "status": "active", "size": size, "checksum": md5,
                        "os_hash_algo": "sha512", "os_hash_value": sha512,
                        "updated_at": iso(now())})
            STATE["uploads"][img["id"]] = sha.hexdigest()
        return self._send(204)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global STORE, PORT
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--store", required=True)
    args = ap.parse_args()
    STORE = args.store
    os.makedirs(STORE, exist_ok=True)
    srv = Server(("127.0.0.1", args.port), Handler)
    PORT = srv.server_address[1]
    print("listening on 127.0.0.1:%d" % PORT, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
