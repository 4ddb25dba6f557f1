"""berthd.service: installed by `cmake --install`, pointing at the installed berthd, and
stopping berthd alone so that the instances outlive it (issue 4, item 9)."""
import configparser
import os
import shutil
import subprocess

import pytest

import berthd_process


def _install(tmp_path):
    build = os.path.dirname(os.path.dirname(os.path.dirname(berthd_process.berthd_binary())))
    if not os.path.exists(os.path.join(build, "cmake_install.cmake")):
        pytest.skip("no configured build at %s" % build)
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", build, "--prefix", str(prefix)], check=True,
                   stdout=subprocess.DEVNULL)
    return prefix


def test_cmake_install_puts_a_unit_that_runs_the_installed_berthd(tmp_path):
    prefix = _install(tmp_path)
    unit = prefix / "lib" / "systemd" / "system" / "berthd.service"
    assert unit.is_file(), "cmake --install did not install berthd.service"
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(unit)
    exec_start = parser["Service"]["ExecStart"].split()
    # The configure step wrote the prefix of the build, not this test's: the path ends
    # in sbin/berthd and the config is the documented one.
    assert exec_start[0].endswith("/sbin/berthd"), exec_start
    assert exec_start[1:] == ["--config", "/etc/berth/berthd.conf"], exec_start
    assert (prefix / "sbin" / "berthd").is_file()
    # A stop signals berthd alone: the monitors and instances stay.
    assert parser["Service"]["KillMode"] == "process"
    assert parser["Service"]["Delegate"] == "yes"
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    prefix = _install(tmp_path)
    unit = prefix / "lib" / "systemd" / "system" / "berthd.service"
    text = unit.read_text()
    # Point ExecStart at the copy this install made, which exists.
    exec_start = [l for l in text.splitlines() if l.startswith("ExecStart=")][0]
    binary = exec_start.split("=", 1)[1].split()[0]
    local = tmp_path / "berthd.service"
    local.write_text(text.replace(binary, str(prefix / "sbin" / "berthd")))
    r = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True,
                       text=True)
    # Only complaints about this unit count (the host's other units are not ours).
    ours = [l for l in (r.stdout + r.stderr).splitlines() if "berthd.service" in l]
    assert not ours, "\n".join(ours)
