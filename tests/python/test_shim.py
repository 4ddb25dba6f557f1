"""The nova/virt/berth shim and install.sh: Nova 26 loads `compute_driver =
berth.BerthDriver` only from its nova.virt namespace."""

import os
import subprocess
import sys

import pytest

import nova.virt
from nova.virt import driver as virt_driver
from nova.virt import fake as fake_virt

from nova_berth import driver as berth_driver

HERE = os.path.dirname(os.path.abspath(__file__))
NOVA_DIR = os.path.join(os.path.dirname(os.path.dirname(HERE)), "driver", "nova")
INSTALL = os.path.join(NOVA_DIR, "install.sh")


@pytest.fixture
def berth_in_nova_virt(tmp_path):
    """nova.virt.berth importable from a temp dir, as install.sh would link it, without
    touching the system's Nova."""
    os.symlink(os.path.join(NOVA_DIR, "nova_virt_berth"), tmp_path / "berth")
    nova.virt.__path__.append(str(tmp_path))
    yield
    nova.virt.__path__.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("nova.virt.berth")]:
        del sys.modules[name]


@pytest.mark.parametrize("name", ["berth.BerthDriver", "berth.driver.BerthDriver"])
def test_nova_loads_the_driver_by_its_short_name(berth_in_nova_virt, name):
    drv = virt_driver.load_compute_driver(fake_virt.FakeVirtAPI(), name)
    assert isinstance(drv, berth_driver.BerthDriver)


def fake_tree(tmp_path):
    nova_dir = tmp_path / "site" / "nova"
    (nova_dir / "virt").mkdir(parents=True)
    return str(nova_dir), str(tmp_path / "site")


def test_install_and_uninstall_links(tmp_path):
    nova_dir, site = fake_tree(tmp_path)
    args = [INSTALL, "--nova-dir", nova_dir, "--site-dir", site, "--no-check"]
    subprocess.run(args, check=True, capture_output=True)
    assert os.readlink(os.path.join(nova_dir, "virt", "berth")) == \
        os.path.join(NOVA_DIR, "nova_virt_berth")
    assert os.readlink(os.path.join(site, "nova_berth")) == os.path.join(NOVA_DIR,
                                                                         "nova_berth")
    subprocess.run(args, check=True, capture_output=True)  # again: replaces its links
    subprocess.run(args + ["--uninstall"], check=True, capture_output=True)
    assert not os.path.lexists(os.path.join(nova_dir, "virt", "berth"))
    assert not os.path.lexists(os.path.join(site, "nova_berth"))


def test_install_does_not_replace_a_real_directory(tmp_path):
    nova_dir, site = fake_tree(tmp_path)
    os.mkdir(os.path.join(nova_dir, "virt", "berth"))
    r = subprocess.run([INSTALL, "--nova-dir", nova_dir, "--site-dir", site, "--no-check"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "not a link" in r.stderr
    assert os.path.isdir(os.path.join(nova_dir, "virt", "berth"))
