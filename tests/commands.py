"""Runs jaxreid's command lines as a user would, for the tests that check what they print.

A fresh `python -m <module>` process with stdout and stderr captured as text, on one host
device: the tests' own XLA_FLAGS (8 host devices, tests/conftest.py) are cleared, since a
user's process sees one CPU device and some messages depend on the device count.
"""

import os
import subprocess
import sys


def run_module(module: str, *args: str, timeout: float, cwd=None, expect_ok: bool = True):
    """`python -m module *args`; returns the `subprocess.CompletedProcess` (text stdout,
    stderr). With `expect_ok`, asserts exit status 0, showing the end of stderr if not."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "XLA_FLAGS": ""},
    )
    if expect_ok:
        assert done.returncode == 0, done.stderr[-3000:]
    return done
