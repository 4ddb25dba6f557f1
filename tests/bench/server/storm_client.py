#!/usr/bin/env python3
"""Spawn/delete storm client for spawn_bench.sh: N instances created and deleted by C
threads, each on one kept-alive HTTP connection to berthd.

One process for all clients: a client made of shell, curl and grep processes costs more
CPU per request than berthd itself on a 2-core guest (a process start is milliseconds
there), and the storm would measure the client.

    storm_client.py URL TOKEN N C OUT_DIR
Writes OUT_DIR/post.times and OUT_DIR/delete.times (seconds, one a line) and prints the
rate. Exits non-zero when a request fails.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

BODY = json.dumps({
    "image": "bb",
    "flavor": {"vcpus": 1, "memory_mb": 32},
    "command": ["sleep", "1000"],
})


def main():
    url, token, n, c, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    parsed = urllib.parse.urlparse(url)
    headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    lock = threading.Lock()
    todo = list(range(n))
    posts, deletes, errors = [], [], []

    def client():
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        while True:
            with lock:
                if not todo or errors:
                    break
                todo.pop()
            try:
                t0 = time.monotonic()
                conn.request("POST", "/v1/instances", BODY, headers)
                resp = conn.getresponse()
                body = resp.read()
                t1 = time.monotonic()
                if resp.status != 201:
                    raise RuntimeError("POST: %d %s" % (resp.status, body[:200]))
                uuid = json.loads(body)["uuid"]
                conn.request("DELETE", "/v1/instances/" + uuid, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                t2 = time.monotonic()
                if resp.status not in (200, 202, 204):
                    raise RuntimeError("DELETE %s: %d %s" % (uuid, resp.status, body[:200]))
            except Exception as e:  # noqa: BLE001 - any failure ends the storm, reported below
                with lock:
                    errors.append(str(e))
                break
            with lock:
                posts.append(t1 - t0)
                deletes.append(t2 - t1)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(c)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    with open(out + "/post.times", "w") as f:
        f.writelines("%f\n" % v for v in posts)
    with open(out + "/delete.times", "w") as f:
        f.writelines("%f\n" % v for v in deletes)
    if errors:
        print("storm failed: " + errors[0], file=sys.stderr)
        return 1
    print("spawn+delete: %d instances, %d clients: %.2f /s (%.1f s)" % (n, c, n / elapsed, elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
