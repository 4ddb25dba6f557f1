"""devstack/plugin.sh, phase by phase, with devstack's helpers and the commands that would
change the host replaced by recorders (tests/devstack/run_phase.sh): which calls each phase
makes, in which order, with which arguments. And shellcheck over every shell file the
plugin and the Heat images ship."""

import configparser
import os
import re
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUN_PHASE = os.path.join(REPO, "tests", "devstack", "run_phase.sh")


def parse_log(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        data = f.read()
    calls = []
    for rec in data.split("\x1e"):
        if rec:
            calls.append(rec.split("\x1f")[:-1])
    return calls


class Devstack:
    def __init__(self, tmp):
        self.tmp = tmp
        self.log = str(tmp / "calls")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp),
            "TMPDIR": str(tmp),
            "STUB_LOG": self.log,
            "STUB_ENABLED": "berthd n-cpu g-api",
            "DEST": str(tmp / "opt-stack"),
            "NOVA_CONF": "/etc/nova/nova.conf",
            "NOVA_CPU_CONF": "/etc/nova/nova-cpu.conf",
            "GLANCE_API_CONF": "/etc/glance/glance-api.conf",
            "SERVICE_TIMEOUT": "60",
            "PYTHON": "/usr/bin/python3",
            "BERTH_STATE_DIR": str(tmp / "state"),
            "BERTH_BUILD_DIR": str(tmp / "build"),
        }

    def run(self, *args, **env):
        if os.path.exists(self.log):
            os.unlink(self.log)
        e = dict(self.env, **env)
        proc = subprocess.run([RUN_PHASE, *args], env=e, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)
        calls = parse_log(self.log)
        # What settings/override-defaults do on every run: not part of any phase.
        assert calls[:2] == [["VIRT_DRIVER", env.get("VIRT_DRIVER", "berth")],
                             ["enable_service", "berthd"]], calls[:2]
        return proc, calls[2:]


@pytest.fixture
def ds(tmp_path):
    return Devstack(tmp_path)


def names(calls):
    """"iniset", "sudo install.sh", ...: the command, and for sudo the program it runs."""
    out = []
    for c in calls:
        if c[0] != "sudo":
            out.append(c[0])
        else:
            prog = next(a for a in c[1:] if not re.match(r"\w+=", a))
            out.append("sudo " + os.path.basename(prog))
    return out


def test_pre_install_installs_build_deps(ds):
    proc, calls = ds.run("stack", "pre-install")
    assert proc.returncode == 0, proc.stderr
    assert calls == [["echo_summary", "Installing Berth's build dependencies"],
                     ["sudo", f"{REPO}/scripts/deps.sh", "--build-only"]]


def test_pre_install_refuses_other_distributions(ds):
    proc, calls = ds.run("stack", "pre-install", STUB_IS_UBUNTU="1")
    assert proc.returncode != 0
    assert calls[-1][0] == "die" and "Debian" in calls[-1][2]
    assert not [c for c in calls if c[0] == "sudo"]


def test_install_builds_and_installs(ds):
    proc, calls = ds.run("stack", "install")
    assert proc.returncode == 0, proc.stderr
    build = str(ds.tmp / "build")
    assert calls[1:] == [
        ["cmake", "-S", REPO, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
         "-DBERTH_WERROR=OFF"],
        ["ninja", "-C", build, "berthd", "berth", "berth-monitor", "berth-runtime",
         "berth-image"],
        ["sudo", "cmake", "--install", build, "--prefix", "/usr/local"],
    ]


def iniset_calls(calls):
    return {(c[1], c[2], c[3]): c[4] for c in calls if c[0] == "iniset"}


def written(calls, path):
    """The content a `sudo install ... /dev/stdin PATH` call wrote."""
    for c in calls:
        if c[:2] == ["sudo", "install"] and c[-2] == path and c[-1].startswith("stdin:"):
            return c[-1][len("stdin:"):]
    return None


def test_post_config_configures_and_starts_berthd(ds):
    proc, calls = ds.run("stack", "post-config")
    assert proc.returncode == 0, proc.stderr
    state = str(ds.tmp / "state")
    conf = configparser.ConfigParser()
    conf.read_string(written(calls, "/etc/berth/berthd.conf"))
    assert conf["DEFAULT"]["state_dir"] == state
    assert conf["api"]["listen"] == "127.0.0.1" and conf["api"]["port"] == "8780"
    assert conf["api"]["token_file"] == "/etc/berth/admin-token"
    assert conf["storage"]["driver"] == "overlay"
    assert conf["instances"]["cgroup_parent"] == "berth"

    token = written(calls, "/etc/berth/admin-token").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    token_write = [c for c in calls if c[-2:-1] == ["/etc/berth/admin-token"]][0]
    assert token_write[:4] == ["sudo", "install", "-m", "0600"]

    ini = iniset_calls(calls)
    cpu = "/etc/nova/nova-cpu.conf"
    assert ini[(cpu, "DEFAULT", "compute_driver")] == "berth.BerthDriver"
    assert ini[(cpu, "berth", "api_url")] == "http://127.0.0.1:8780"
    assert ini[(cpu, "berth", "token")] == token
    assert ini[("/etc/nova/nova.conf", "DEFAULT", "allow_resize_to_same_host")] == "True"
    assert "root-tar" in ini[("/etc/glance/glance-api.conf", "image_format", "disk_formats")]

    assert ["sudo", "PYTHON=/usr/bin/python3", f"{REPO}/driver/nova/install.sh"] in calls
    assert calls[-2] == ["run_process", "berthd",
                         "/usr/local/sbin/berthd --config /etc/berth/berthd.conf", "", "root"]
    assert calls[-1] == ["wait_for_service", "60", "http://127.0.0.1:8780/healthz"]
    # devstack's systemd units refuse commands with sudo or without an absolute path.
    command = calls[-2][2]
    assert command.startswith("/") and "sudo" not in command
    # berthd starts only once its config, its token and Nova's config are written.
    order = names(calls)
    assert order.index("run_process") > max(i for i, n in enumerate(order) if n == "iniset")
    assert order.index("run_process") > order.index("sudo install.sh")


def test_post_config_keeps_an_existing_token(ds):
    proc, calls = ds.run("stack", "post-config", STUB_TOKEN="a" * 64)
    assert proc.returncode == 0, proc.stderr
    assert written(calls, "/etc/berth/admin-token") is None
    assert iniset_calls(calls)[("/etc/nova/nova-cpu.conf", "berth", "token")] == "a" * 64


def test_post_config_touches_only_enabled_services(ds):
    proc, calls = ds.run("stack", "post-config", STUB_ENABLED="berthd")
    assert proc.returncode == 0, proc.stderr
    assert not [c for c in calls if c[0] == "iniset"]
    assert "run_process" in names(calls)


def test_post_config_fails_when_berthd_does_not_answer(ds):
    proc, calls = ds.run("stack", "post-config", STUB_WAIT_RC="1")
    assert proc.returncode != 0
    assert calls[-1][0] == "die" and "did not answer" in calls[-1][2]


def test_extra_uploads_heat_images_only_when_asked(ds):
    proc, calls = ds.run("stack", "extra")
    assert proc.returncode == 0 and calls == []
    proc, calls = ds.run("stack", "extra", BERTH_UPLOAD_HEAT_IMAGES="true")
    assert proc.returncode == 0, proc.stderr
    out = str(ds.tmp / "state" / "heat-images")
    assert ["sudo", f"{REPO}/heat_templates/images/build.sh", "--out", out] in calls
    uploads = [c for c in calls if c[0] == "openstack"]
    assert [c[5] for c in uploads] == [f"berth-{i}" for i in ("web", "api", "worker", "db", "mq")]
    for c in uploads:
        assert c[c.index("--container-format") + 1] == "docker"
        assert c[c.index("--disk-format") + 1] == "raw"
        assert c[c.index("--file") + 1] == f"{out}/{c[5]}.tar"


def test_unstack_deletes_instances_then_stops_berthd(ds):
    instances = '{"instances": [{"uuid": "u-1"}, {"uuid": "u-2"}]}'
    proc, calls = ds.run("unstack", STUB_INSTANCES=instances)
    assert proc.returncode == 0, proc.stderr
    cli = ["sudo", "/usr/local/bin/berth", "--url", "http://127.0.0.1:8780", "--token-file",
           "/etc/berth/admin-token"]
    assert calls == [cli + ["--json", "instance", "list"],
                     cli + ["instance", "delete", "u-1"],
                     cli + ["instance", "delete", "u-2"],
                     ["stop_process", "berthd"]]


def test_clean_removes_what_stack_made(ds):
    build = ds.tmp / "build"
    build.mkdir()
    (build / "install_manifest.txt").write_text("/usr/local/sbin/berthd\n/usr/local/bin/berth\n")
    proc, calls = ds.run("clean")
    assert proc.returncode == 0, proc.stderr
    state = str(ds.tmp / "state")
    assert calls[0] == ["sudo", f"{REPO}/driver/nova/install.sh", "--uninstall"]
    assert ["sudo", "rm", "-rf", state, "/run/berth", "/etc/berth/berthd.conf",
            "/etc/berth/admin-token"] in calls
    assert calls[-1] == ["sudo", "rm", "-f", "/usr/local/sbin/berthd", "/usr/local/bin/berth"]


@pytest.mark.parametrize("args", [("stack", "pre-install"), ("stack", "install"),
                                  ("stack", "post-config"), ("stack", "extra"),
                                  ("unstack",), ("clean",)])
def test_nothing_happens_when_berthd_is_disabled(ds, args):
    proc, calls = ds.run(*args, STUB_ENABLED="n-cpu g-api")
    assert proc.returncode == 0, proc.stderr
    assert calls == []


def test_override_defaults_keeps_an_explicit_virt_driver(ds):
    proc, calls = ds.run("stack", "extra", VIRT_DRIVER="libvirt")
    assert proc.returncode == 0, proc.stderr


def test_plugin_writes_only_options_berthd_knows(ds):
    with open(os.path.join(REPO, "driver", "server", "config.cc")) as f:
        known = set(re.findall(r'\{"(\w+)\.(\w+)"', f.read()))
    _, calls = ds.run("stack", "post-config")
    conf = configparser.ConfigParser()
    conf.read_string(written(calls, "/etc/berth/berthd.conf"))
    for section in ["DEFAULT"] + conf.sections():
        for key in (conf[section] if section != "DEFAULT" else conf.defaults()):
            if section != "DEFAULT" and key in conf.defaults():
                continue
            assert (section, key) in known, f"[{section}] {key} is not a berthd option"


SHELL_FILES = [
    "devstack/plugin.sh", "devstack/lib/berth", "devstack/settings", "devstack/override-defaults",
    "tests/devstack/run_phase.sh", "heat_templates/images/build.sh",
    "heat_templates/images/smoke_test.sh", "heat_templates/images/upload.sh",
    "heat_templates/images/files/base/usr/local/bin/berth-entry",
    "heat_templates/images/files/web/usr/local/bin/berth-web",
    "heat_templates/images/files/mq/usr/local/bin/berth-mq",
]


def test_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.fail("shellcheck is not installed (scripts/deps.sh installs it)")
    proc = subprocess.run([shellcheck, "-x", *SHELL_FILES], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
