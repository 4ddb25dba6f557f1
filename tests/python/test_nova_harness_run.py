"""Runs Nova's driver conformance suite (test_nova_harness.py) with Nova's own runner,
testtools: its test cases are testtools-based and do not run under pytest's unittest
support. One pytest test, so `/usr/bin/python3 -m pytest tests/python` runs everything."""

import os
import subprocess
import sys

import pytest

import berthd_process

HERE = os.path.dirname(os.path.abspath(__file__))


def test_nova_virt_driver_harness_against_real_berthd():
    reason = berthd_process.missing_reason()
    if reason:
        pytest.skip(reason)
    r = subprocess.run([sys.executable, "-m", "testtools.run", "test_nova_harness"],
                       cwd=HERE, capture_output=True, text=True, timeout=600)
    summary = [line for line in r.stderr.splitlines() + r.stdout.splitlines()
               if line.startswith(("Ran ", "OK", "FAILED", "BerthDriver:"))]
    print("\n".join(summary))
    assert r.returncode == 0, r.stdout[-20000:] + r.stderr[-20000:]
    assert any(line.startswith("OK") for line in summary)
