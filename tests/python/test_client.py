"""nova_berth.client against a fake berthd: the requests it sends and the exceptions it
raises for berthd's errors."""


import pytest

from fake_berthd import HOST, error, instance_json
from nova_berth import client as berth_client
from nova_berth import exception as exc

UUID = "6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b"


def make(fake, **kw):
    kw.setdefault("token", "fake-token")
    return berth_client.BerthClient(fake.url, timeout=5, **kw)


def test_host_sends_token_and_parses(fake):
    fake.set("GET", "/v1/host", 200, HOST)
    assert make(fake).host() == HOST
    (req,) = fake.calls()
    assert req.headers["X-Auth-Token"] == "fake-token"
    assert req.headers["Accept"] == "application/json"


def test_healthz_needs_no_token(fake):
    fake.set("GET", "/healthz", 200, "ok\n")
    assert make(fake, token=None, token_file="/nonexistent").healthz()
    assert "X-Auth-Token" not in fake.calls()[0].headers


def test_token_from_file(fake, token_file):
    fake.set("GET", "/v1/instances", 200, {"instances": []})
    assert make(fake, token=None, token_file=token_file).list_instances() == []


def test_token_file_reread_after_401(fake, tmp_path):
    p = tmp_path / "tok"
    p.write_text("old-token")
    c = make(fake, token=None, token_file=str(p))
    fake.set("GET", "/v1/instances", 200, {"instances": []})
    p.write_text("fake-token")  # rotated after the client read it? not read yet
    c._token = "old-token"      # the client holds the old one
    assert c.list_instances() == []
    tokens = [r.headers["X-Auth-Token"] for r in fake.calls()]
    assert tokens == ["old-token", "fake-token"]


def test_401_is_unauthorized(fake):
    fake.set("GET", "/v1/host", 200, HOST)
    with pytest.raises(exc.BerthUnauthorized) as e:
        make(fake, token="wrong").host()
    assert e.value.status == 401 and "invalid token" in str(e.value)
    assert len(fake.calls()) == 1  # an explicit token is not retried


def test_missing_token_file(fake):
    with pytest.raises(exc.BerthUnauthorized) as e:
        make(fake, token=None, token_file="/nonexistent/berth-token").host()
    assert "/nonexistent/berth-token" in str(e.value)
    assert fake.calls() == []


def test_404_is_not_found_with_message(fake):
    fake.add("GET", "/v1/instances/" + UUID, 404, error(404, "instance %s not found" % UUID))
    with pytest.raises(exc.BerthNotFound) as e:
        make(fake).get_instance(UUID)
    assert e.value.status == 404 and UUID in e.value.message
    assert e.value.method == "GET" and e.value.path == "/v1/instances/" + UUID


def test_unknown_route_is_not_supported(fake):
    with pytest.raises(exc.BerthNotSupported):
        make(fake).snapshot(UUID, "img")


@pytest.mark.parametrize("status,cls", [(400, exc.BerthBadRequest), (409, exc.BerthConflict),
                                        (413, exc.BerthTooLarge), (500, exc.BerthServerError),
                                        (501, exc.BerthNotSupported),
                                        (507, exc.BerthInsufficientStorage),
                                        (503, exc.BerthServerError)])
def test_error_status_classes(fake, status, cls):
    fake.add("POST", "/v1/instances/%s/action" % UUID, status, error(status, "nope"))
    with pytest.raises(cls) as e:
        make(fake).pause(UUID)
    assert e.value.status == status and e.value.message == "nope"


def test_non_json_error_body(fake):
    fake.add("GET", "/v1/host", 500, "boom")
    with pytest.raises(exc.BerthServerError) as e:
        make(fake).host()
    assert "boom" in str(e.value)


def test_non_json_success_is_bad_response(fake):
    fake.add("GET", "/v1/host", 200, "not json")
    with pytest.raises(exc.BerthBadResponse):
        make(fake).host()


def test_connection_refused():
    c = berth_client.BerthClient("http://127.0.0.1:9", token="t", connect_timeout=1)
    with pytest.raises(exc.BerthConnectionError) as e:
        c.host()
    assert "127.0.0.1:9" in str(e.value)


def test_read_timeout(fake):
    fake.set("GET", "/v1/host", 200, HOST)
    fake.delay = 1.0
    c = berth_client.BerthClient(fake.url, token="fake-token", timeout=0.2)
    with pytest.raises(exc.BerthTimeout):
        c.host()


def test_create_instance_body(fake):
    fake.add("POST", "/v1/instances", 201, instance_json(UUID))
    flavor = {"vcpus": 1, "memory_mb": 64, "root_gb": 0, "extra_specs": {}}
    out = make(fake).create_instance(UUID, "img-1", flavor, name="web", metadata={"a": "b"},
                                     glance={"id": "img-1"}, token="ks")
    assert out["uuid"] == UUID
    (req,) = fake.calls()
    assert req.method == "POST" and req.path == "/v1/instances"
    assert req.headers["Content-Type"] == "application/json"
    assert req.json == {"uuid": UUID, "image": "img-1", "flavor": flavor, "name": "web",
                        "metadata": {"a": "b"}, "glance": {"id": "img-1"}, "token": "ks"}


def test_actions_bodies(fake):
    path = "/v1/instances/%s/action" % UUID
    fake.set("POST", path, 200, instance_json(UUID))
    c = make(fake)
    c.start(UUID)
    c.stop(UUID, timeout=7)
    c.stop(UUID)
    c.reboot(UUID, hard=False, timeout=3)
    c.reboot(UUID, hard=True)
    c.pause(UUID)
    c.unpause(UUID)
    c.suspend(UUID)
    c.resume(UUID)
    c.resize(UUID, {"vcpus": 2, "memory_mb": 128})
    assert [r.json for r in fake.calls()] == [
        {"action": "start"},
        {"action": "stop", "timeout": 7},
        {"action": "stop"},
        {"action": "reboot", "type": "SOFT", "timeout": 3},
        {"action": "reboot", "type": "HARD"},
        {"action": "pause"}, {"action": "unpause"}, {"action": "suspend"},
        {"action": "resume"},
        {"action": "resize", "flavor": {"vcpus": 2, "memory_mb": 128}},
    ]


def test_console_stats_exec_delete(fake):
    base = "/v1/instances/" + UUID
    fake.add("GET", base + "/console", 200, {"output": "hello\n"})
    fake.add("GET", base + "/stats", 200, {"cpu": {"usage_ns": 5}})
    fake.add("POST", base + "/exec", 200, {"exit_code": 0, "stdout": "x", "stderr": "",
                                           "truncated": False})
    fake.add("DELETE", base, 204)
    c = make(fake)
    assert c.console(UUID, lines=5) == "hello\n"
    assert c.stats(UUID) == {"cpu": {"usage_ns": 5}}
    assert c.exec(UUID, ["echo", "x"], env=["A=1"])["stdout"] == "x"
    assert c.delete_instance(UUID) is None
    reqs = fake.calls()
    assert reqs[0].query == {"lines": ["5"]}
    assert reqs[2].json == {"command": ["echo", "x"], "env": ["A=1"]}
    assert reqs[3].method == "DELETE"


def test_uuid_is_quoted(fake):
    with pytest.raises(exc.BerthNotSupported):
        make(fake).get_instance("../host")
    assert fake.calls()[0].path == "/v1/instances/..%2Fhost"


def test_routes_from_openapi(fake):
    fake.set("GET", "/v1/openapi.json", 200, {"paths": {
        "/v1/instances/{uuid}": {"get": {}, "delete": {}},
        "/v1/instances/{uuid}/snapshot": {"post": {}}}})
    c = make(fake)
    assert c.supports("DELETE", "/v1/instances/{uuid}")
    assert c.supports_snapshot()
    assert not c.supports("POST", "/v1/instances/{uuid}/diff")


def test_import_image_sends_archive(fake):
    fake.add("POST", "/v1/images", 201, {"id": "sha256:" + "cd" * 32})
    make(fake).import_image(b"TARDATA", fmt="rootfs-tar", name="busybox")
    (req,) = fake.calls()
    assert req.body == b"TARDATA"
    assert req.query == {"format": ["rootfs-tar"], "name": ["busybox"]}
    assert req.headers["Content-Type"] == "application/x-tar"


def test_a_408_from_a_timed_out_connection_is_sent_again_once(fake):
    # Pistache's answer to a request that met its connection timer: never processed.
    path = "/v1/instances/%s/action" % UUID
    fake.add("POST", path, 408, "Request Timeout")
    fake.set("POST", path, 202, {"uuid": UUID})
    make(fake).reboot(UUID, hard=True)
    assert len(fake.calls("POST", path)) == 2
    # A second 408 in a row is an error, not a loop.
    fake.add("POST", path, 408, "Request Timeout")
    fake.add("POST", path, 408, "Request Timeout")
    with pytest.raises(exc.BerthError) as e:
        make(fake).reboot(UUID, hard=True)
    assert e.value.status == 408
    assert len(fake.calls("POST", path)) == 4
