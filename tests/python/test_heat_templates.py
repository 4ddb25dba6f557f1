"""heat_templates/: each template validated by Heat's own code (python3-heat, offline, via
heat_templates/validate.py in a subprocess so Heat's global config never meets Nova's),
the wiring between the tiers, and the images' entrypoint reading the user data the
templates write."""

import base64
import importlib.util
import json
import os
import re
import subprocess

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HEAT = os.path.join(REPO, "heat_templates")
FILES = os.path.join(HEAT, "images", "files")
ENTRY = os.path.join(FILES, "base", "usr", "local", "bin", "berth-entry")
TEMPLATES = ["single_server.yaml", "multi_tier.yaml"]
PYTHON = "/usr/bin/python3"


def heat_available():
    return importlib.util.find_spec("heat") is not None


pytestmark = pytest.mark.skipif(not os.path.exists(PYTHON), reason="needs Debian's python3")


def start_validate(paths, params=()):
    cmd = [PYTHON, os.path.join(HEAT, "validate.py"), "--json", "--render"]
    for p in params:
        cmd += ["-P", p]
    return subprocess.Popen(cmd + list(paths), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish_validate(proc, paths):
    out, err = proc.communicate(timeout=180)
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(results) == len(paths), err
    return proc.returncode, results


def load(name):
    with open(os.path.join(HEAT, name)) as f:
        doc = yaml.safe_load(f)
    doc["heat_template_version"] = str(doc["heat_template_version"])  # YAML reads a date
    return doc


def broken_templates(tmp):
    """A bad property, a dangling get_attr and a dependency cycle: the check can fail."""
    t = load("multi_tier.yaml")
    bad_prop = json.loads(json.dumps(t))
    bad_prop["resources"]["db"]["properties"]["user_data_fromat"] = "RAW"
    dangling = json.loads(json.dumps(t))
    dangling["resources"]["web"]["properties"]["metadata"]["X"] = {"get_attr": ["apii", "name"]}
    cycle = json.loads(json.dumps(t))
    cycle["resources"]["db"]["properties"]["metadata"]["X"] = {"get_attr": ["web", "name"]}
    paths = []
    for name, doc in (("bad_prop", bad_prop), ("dangling", dangling), ("cycle", cycle)):
        p = tmp / f"{name}.yaml"
        p.write_text(yaml.safe_dump(doc))
        paths.append(str(p))
    return paths


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    """Heat's verdicts, from three validate.py runs at once (Heat takes seconds to import)."""
    if not heat_available():
        pytest.fail("python3-heat is not installed (scripts/deps.sh installs it)")
    paths = [os.path.join(HEAT, t) for t in TEMPLATES]
    broken = broken_templates(tmp_path_factory.mktemp("broken"))
    runs = [(paths, ()), (paths, ("network=private",)), (broken, ("network=private",)),
            (paths[1:], ("flavor=small", "db_flavor=big", "api_image=my-api"))]
    procs = [start_validate(p, params) for p, params in runs]
    out = {}
    for proc, (p, params) in zip(procs, runs):
        rc, results = finish_validate(proc, p)
        for r in results:
            out[(os.path.basename(r["template"]), params)] = r
        out[("rc", os.path.basename(p[0]), params)] = rc
    return out


@pytest.mark.parametrize("name", TEMPLATES)
@pytest.mark.parametrize("params", [(), ("network=private",)])
def test_heat_validates(validated, name, params):
    r = validated[(name, params)]
    assert r["ok"], r.get("error")


def test_validation_rejects_broken_templates(validated):
    assert validated[("rc", "bad_prop.yaml", ("network=private",))] == 1
    errors = {}
    for name in ("bad_prop.yaml", "dangling.yaml", "cycle.yaml"):
        r = validated[(name, ("network=private",))]
        assert not r["ok"], name
        errors[name] = r["error"]
    assert "user_data_fromat" in errors["bad_prop.yaml"]
    assert "apii" in errors["dangling.yaml"]
    assert "Circular" in errors["cycle.yaml"]


def test_single_server_interface(validated):
    r = validated[("single_server.yaml", ("network=private",))]
    assert {"image", "flavor", "network"} <= set(r["parameters"])
    assert "url" in r["outputs"]
    assert r["resources"]["server"] == "OS::Nova::Server"
    # Without a network there is no port and so no security group.
    assert "security_group" not in validated[("single_server.yaml", ())]["resources"]


def test_multi_tier_interface(validated):
    r = validated[("multi_tier.yaml", ("network=private",))]
    for tier in ("web", "api", "worker", "db", "mq"):
        assert f"{tier}_image" in r["parameters"] and f"{tier}_flavor" in r["parameters"]
    assert {"network", "flavor"} <= set(r["parameters"])
    assert {"url", "status_url", "addresses"} <= set(r["outputs"])
    servers = {n for n, t in r["resources"].items() if t == "OS::Nova::Server"}
    assert servers == {"web", "api", "db", "mq"}
    assert r["resources"]["workers"] == "OS::Heat::ResourceGroup"


def test_multi_tier_flavor_and_images(validated):
    """One flavor for all, unless a tier names its own; images per tier."""
    servers = validated[("multi_tier.yaml", ())]["servers"]
    assert {s["flavor"] for s in servers.values()} == {"m1.tiny"}
    assert {n: s["image"] for n, s in servers.items()} == {
        "web": "berth-web", "api": "berth-api", "workers": "berth-worker", "db": "berth-db",
        "mq": "berth-mq"}
    servers = validated[("multi_tier.yaml", ("flavor=small", "db_flavor=big",
                                             "api_image=my-api"))]["servers"]
    assert servers["db"]["flavor"] == "big"
    assert servers["workers"]["flavor"] == servers["web"]["flavor"] == "small"
    assert servers["api"]["image"] == "my-api"


def test_multi_tier_creation_order(validated):
    """get_attr of the other servers' addresses orders the creation: back end first."""
    deps = validated[("multi_tier.yaml", ("network=private",))]["depends_on"]
    assert {"db", "mq"} <= set(deps["api"])
    assert {"db", "mq"} <= set(deps["workers"])
    assert "api" in deps["web"]
    assert not {"api", "web", "workers"} & set(deps["db"] + deps["mq"])


def user_data_templates(doc):
    """(resource name, role, user data template text) of every server in a template."""
    out = []
    for name, res in doc["resources"].items():
        props = res.get("properties", {})
        if res["type"] == "OS::Heat::ResourceGroup":
            props = props["resource_def"]["properties"]
        elif res["type"] != "OS::Nova::Server":
            continue
        assert props["user_data_format"] == "RAW", name
        ud = props["user_data"]["str_replace"]
        text = ud["template"]
        for key, value in ud["params"].items():
            # an OS::Heat::Value holding more settings lines
            if value == {"get_attr": ["backend_settings", "value"]}:
                text = text.replace(key, doc["resources"]["backend_settings"]["properties"]
                                    ["value"]["str_replace"]["template"])
        role = re.search(r"^BERTH_ROLE=(\w+)$", text, re.M)
        out.append((name, role.group(1) if role else "web", text))
    return out


def keys_read_by(role):
    """Settings the role's code reads: setting("X") in Python, ${X} / $X in shell."""
    layer = {"web": "web", "mq": "mq"}.get(role, "app")
    found = set()
    for root, dirs, files in os.walk(os.path.join(FILES, layer)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in files:
            with open(os.path.join(root, f)) as fh:
                text = fh.read()
            found |= set(re.findall(r'(?:setting|port)\("([A-Z_]+)"', text))
            found |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", text))
    return found


@pytest.mark.parametrize("name", TEMPLATES)
def test_user_data_keys_are_read_by_the_images(name):
    for res, role, text in user_data_templates(load(name)):
        keys = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", text, re.M)) - {"BERTH_ROLE"}
        assert keys, res
        unread = keys - keys_read_by(role)
        assert not unread, f"{name}: {res} ({role}) sets {unread}, which its image never reads"


def rendered(validated, name):
    return validated[(name, ("network=private",))]["rendered"]


def settings_of(text):
    return dict(re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", text, re.M))


def test_multi_tier_rendered_wiring(validated):
    """With every server at an address, each client's user data names its peers'."""
    r = rendered(validated, "multi_tier.yaml")
    addr = r["addresses"]
    ud = {name: settings_of(s["user_data"]) for name, s in r["servers"].items()}
    for client in ("api", "workers"):
        assert ud[client]["DB_HOST"] == addr["db"] and ud[client]["MQ_HOST"] == addr["mq"]
        assert ud[client]["DB_PASSWORD"] == ud["db"]["DB_PASSWORD"] != ""
        assert ud[client]["MQ_PASSWORD"] == ud["mq"]["MQ_PASSWORD"] != ""
        assert ud[client]["DB_PORT"] == ud["db"]["DB_PORT"] == "7432"
    assert ud["web"]["API_HOST"] == addr["api"] and ud["web"]["API_PORT"] == ud["api"]["API_PORT"]
    assert {n: u["BERTH_ROLE"] for n, u in ud.items()} == {
        "web": "web", "api": "api", "workers": "worker", "db": "db", "mq": "mq"}
    assert r["servers"]["api"]["metadata"]["DB_HOST"] == addr["db"]
    assert r["outputs"]["url"] == f"http://{addr['web']}:80/"
    assert r["outputs"]["status_url"] == f"http://{addr['web']}:80/api/status"


def test_single_server_rendered(validated):
    r = rendered(validated, "single_server.yaml")
    assert r["outputs"]["url"] == f"http://{r['addresses']['server']}:80/"
    assert settings_of(r["servers"]["server"]["user_data"])["WEB_PORT"] == "80"


def test_rendered_user_data_reaches_the_services(validated, tmp_path):
    """The API's user data as Heat renders it, read by berth-entry: the environment the
    API service starts with names the database and the queue."""
    r = rendered(validated, "multi_tier.yaml")
    proc, _ = run_entry(tmp_path, {}, r["servers"]["api"]["user_data"])
    # BERTH_ROLE=api in the user data wins over the role argument; on this host there is no
    # /usr/local/bin/berth-api to exec, so only what berth-entry did before exec is checked.
    assert "berth-entry: role api" in proc.stdout, proc.stdout + proc.stderr
    env = settings_of((tmp_path / "run" / "berth-settings.env").read_text())
    assert env["DB_HOST"] == r["addresses"]["db"] and env["MQ_HOST"] == r["addresses"]["mq"]
    assert env["BERTH_ROLE"] == "api" and "DB_PASSWORD" not in env  # secrets not logged


def test_multi_tier_passes_addresses_both_ways():
    """Each client tier gets its peers' addresses in user data and in metadata."""
    doc = load("multi_tier.yaml")
    by_role = {role: text for _, role, text in user_data_templates(doc)}
    for role, peers in (("api", ("DB_HOST", "MQ_HOST")), ("worker", ("DB_HOST", "MQ_HOST")),
                        ("web", ("API_HOST",))):
        for key in peers:
            assert re.search(rf"^{key}=\$\w+$", by_role[role], re.M), (role, key)
    meta = doc["resources"]["api"]["properties"]["metadata"]
    assert meta["DB_HOST"]["if"][1] == {"get_attr": ["db", "networks", {"get_param": "network"}, 0]}
    assert "PASSWORD" not in json.dumps(meta), "secrets belong in user data, not metadata"


def run_entry(tmp_path, env, user_data=None, args=("sh", "-c", "env")):
    # BERTH_METADATA_URL: a closed local port, so no test ever asks 169.254.169.254
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BERTH_RUN_DIR": str(tmp_path / "run"),
         "BERTH_METADATA_URL": "http://127.0.0.1:9"}
    e.update(env)
    if user_data is not None:
        f = tmp_path / "user_data"
        f.write_text(user_data)
        e["BERTH_USER_DATA_FILE"] = str(f)
    proc = subprocess.run(["sh", ENTRY, *args], env=e, capture_output=True, text=True,
                          timeout=30)
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines()
                  if "=" in line and not line.startswith("berth-entry"))
    return proc, values


def test_entry_reads_user_data_file(tmp_path):
    proc, env = run_entry(tmp_path, {"DB_HOST": "from-metadata", "API_PORT": "1"}, (
        "#!/bin/sh\n# comment\nDB_HOST=10.0.0.5\n  MQ_HOST = x\nexport MQ_PORT=6380\n"
        "API_PORT=\"8081\"\nPATH=/evil\nnot a setting\nWEB_TITLE=A = B\r\n"))
    assert proc.returncode == 0, proc.stderr
    assert env["DB_HOST"] == "10.0.0.5"     # user data wins over the environment
    assert env["MQ_PORT"] == "6380" and env["API_PORT"] == "8081"
    assert env["WEB_TITLE"] == "A = B"
    assert "MQ_HOST" not in env and "MQ_HOST " not in env  # "KEY = v" is not a setting
    assert env["PATH"] != "/evil"
    assert "ignoring PATH" in proc.stdout
    assert "DB_HOST=10.0.0.5" in (tmp_path / "run" / "berth-settings.env").read_text()


def test_entry_reads_base64_user_data_variable(tmp_path):
    b64 = base64.b64encode(b"DB_HOST=10.1.2.3\nDB_PORT=7000\n").decode()
    proc, env = run_entry(tmp_path, {"BERTH_USER_DATA": b64,
                                     "BERTH_USER_DATA_FILE": "/nonexistent"})
    assert proc.returncode == 0, proc.stderr
    assert env["DB_HOST"] == "10.1.2.3" and env["DB_PORT"] == "7000"


def test_entry_keeps_environment_without_user_data(tmp_path):
    proc, env = run_entry(tmp_path, {"API_HOST": "192.0.2.1"})
    assert proc.returncode == 0, proc.stderr
    assert env["API_HOST"] == "192.0.2.1"


def test_entry_rejects_unknown_role(tmp_path):
    proc, _ = run_entry(tmp_path, {}, "", args=("nonsense",))
    assert proc.returncode == 2
    assert 'unknown role "nonsense"' in proc.stdout
