"""The Heat templates' images under a real berthd (opt-in: they must be built first).

  heat_templates/images/build.sh --out /tmp/berth-images          # ~1.5 min, downloads
  BERTH_HEAT_IMAGES=/tmp/berth-images /usr/bin/python3 -m pytest tests/python/test_heat_images_berthd.py

Imports the five docker-archives into a private berthd (berthd_process.py: 127.0.0.1,
port 0, temp state, own cgroup parent; removed at the end), checks that they share their
bottom layers, spawns each with its settings the way the templates write them, and checks
inside each container (exec) that its service answers: nginx, the API, the SQL server and
Redis run under Berth's capabilities, seccomp profile and no_new_privs. Each instance has
a loopback-only network, so the tiers are checked one by one; the wiring between them is
heat_templates/images/smoke_test.sh's job. The settings go in as BERTH_USER_DATA (base64,
as Nova keeps user data) through the request's env, since berthd does not yet put user
data inside the container by itself. Needs root. About 20 s.
"""

import base64
import os
import time
import uuid as uuidlib

import pytest

import berthd_process

IMAGES = os.environ.get("BERTH_HEAT_IMAGES")

pytestmark = [
    pytest.mark.skipif(not IMAGES, reason="set BERTH_HEAT_IMAGES to build.sh's --out"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(berthd_process.missing_reason() is not None,
                       reason=str(berthd_process.missing_reason())),
]

TIERS = {
    # image: (settings, the check run inside, what its output must contain)
    "web": ("WEB_TITLE=Berth images test\nAPI_HOST=127.0.0.1\n",
            ["wget", "-q", "-O", "-", "http://127.0.0.1/"], "<h1>Berth images test</h1>"),
    "api": ("API_PORT=8080\nDB_HOST=127.0.0.1\n",
            ["wget", "-q", "-O", "-", "http://127.0.0.1:8080/healthz"], "ok"),
    "db": ("DB_PORT=7432\n",
           ["wget", "-q", "-O", "-", "http://127.0.0.1:7432/healthz"], "ok"),
    "mq": ("MQ_PORT=6379\n",
           ["sh", "-c", "printf 'PING\\r\\n' | nc -w 2 127.0.0.1 6379"], "+PONG"),
    "worker": ("MQ_HOST=127.0.0.1\nMQ_PORT=6379\n", ["cat", "/run/berth-settings.env"],
               "MQ_HOST=127.0.0.1"),
}


@pytest.fixture(scope="module")
def berthd():
    b = berthd_process.Berthd().start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def images(berthd):
    c = berthd.client(timeout=300)
    out = {}
    for tier in TIERS:
        path = os.path.join(IMAGES, f"berth-{tier}.tar")
        out[tier] = c.import_image_path(path, fmt="docker-archive", name=f"berth-{tier}")
    return out


def layers(image):
    return [layer["chain_id"] for layer in image["layers"]]


def test_images_share_their_bottom_layers(berthd, images):
    c = berthd.client()
    shown = {t: c.request("GET", "/v1/images/berth-" + t) for t in TIERS}
    stacks = {t: layers(img) for t, img in shown.items()}
    assert all(len(s) == 3 for s in stacks.values()), stacks
    bottoms = {tuple(s[:2]) for s in stacks.values()}
    assert len(bottoms) == 1, "base and libs layers differ between images"
    assert stacks["api"] == stacks["worker"] == stacks["db"]


@pytest.mark.parametrize("tier", list(TIERS))
def test_image_runs_under_berth(berthd, images, tier):
    settings, check, expect = TIERS[tier]
    c = berthd.client(timeout=120)
    uuid = str(uuidlib.uuid4())
    b64 = base64.b64encode(settings.encode()).decode()
    c.request("POST", "/v1/instances", body={
        "uuid": uuid, "name": f"heat-image-{tier}", "image": f"berth-{tier}",
        "flavor": {"vcpus": 1, "memory_mb": 256}, "user_data": b64,
        "env": [f"BERTH_USER_DATA={b64}", "BERTH_METADATA_URL=http://127.0.0.1:9"]})
    try:
        out = None
        for _ in range(50):
            out = c.exec(uuid, check)
            if out["exit_code"] == 0 and expect in out["stdout"]:
                break
            time.sleep(0.2)
        console = c.console(uuid)
        assert expect in out["stdout"], (out, console)
        assert "settings from BERTH_USER_DATA" in str(console), console
        assert f"role {tier}" in str(console), console
    finally:
        c.delete_instance(uuid)
