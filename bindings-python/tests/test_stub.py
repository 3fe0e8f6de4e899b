"""The maintained stub `_medsched.pyi` must match the native module."""

from __future__ import annotations

import subprocess
import sys


def test_stub_matches_the_native_module() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "medsched._medsched"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
