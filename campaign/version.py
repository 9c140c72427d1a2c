"""The code version stamped on every record, figure and report."""
from __future__ import annotations

import functools
import os
import subprocess

from campaign import __version__


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """'<package version>+g<commit>[.dirty]' in a git checkout, else the package version."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.exists(os.path.join(here, ".git")):  # an installed copy, not a checkout
        return __version__
    try:
        out = subprocess.run(["git", "-C", here, "describe", "--always", "--dirty=.dirty", "--abbrev=10"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return __version__
    if out.returncode != 0 or not out.stdout.strip():
        return __version__
    return f"{__version__}+g{out.stdout.strip()}"
