"""pytest setup for the Nova driver tests: the driver's package on sys.path, Nova's objects
registered, and a fake berthd per test."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "driver", "nova"))
sys.path.insert(0, HERE)

import pytest  # noqa: E402

from fake_berthd import FakeBerthd  # noqa: E402


@pytest.fixture
def fake():
    with FakeBerthd(token="fake-token") as f:
        yield f


@pytest.fixture
def token_file(tmp_path):
    p = tmp_path / "admin-token"
    p.write_text("fake-token\n")
    p.chmod(0o600)
    return str(p)

# testtools-based (Nova's harness): run through test_nova_harness_run.py instead.
collect_ignore = ["test_nova_harness.py"]
