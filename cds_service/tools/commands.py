"""Commands the tools suggest, written so that they run as printed from where the user is.

The project's scripts install ``spine-cds`` into the checkout's ``.venv``, which is not on
the user's PATH: a suggestion that says ``spine-cds try ...`` fails when pasted. The
scripts change into the checkout before running a tool and pass the directory the user
ran them from in ``CDS_TOOL_CALLER_CWD``; without it, the current directory is used.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

__all__ = ["CALLER_CWD_ENV", "caller_cwd", "pip_command", "spine_cds_command"]

CALLER_CWD_ENV = "CDS_TOOL_CALLER_CWD"


def caller_cwd() -> Path:
    """The directory the user typed the command in."""
    given = os.environ.get(CALLER_CWD_ENV)
    return Path(given) if given and Path(given).is_dir() else Path.cwd()


def _from_caller(path: Path) -> str:
    """``path`` as the user can type it: relative when it is below their directory."""
    here = os.path.abspath(caller_cwd())
    absolute = os.path.abspath(path)
    if absolute.startswith(here.rstrip(os.sep) + os.sep):
        relative = os.path.relpath(absolute, here)
        return shlex.quote(relative if os.sep in relative else f".{os.sep}{relative}")
    return shlex.quote(absolute)


def _bin_dir() -> Path:
    # Not resolved: a virtual environment's python is a symlink to the system one.
    return Path(os.path.abspath(sys.executable)).parent


def spine_cds_command() -> str:
    """How to run ``spine-cds`` from the user's directory: ``spine-cds`` when that name on
    PATH is this installation, else the path of this installation's script (e.g.
    ``.venv/bin/spine-cds``), else this interpreter with ``-m cds_service``."""
    script = _bin_dir() / "spine-cds"
    if not script.is_file():
        return f"{_from_caller(Path(sys.executable))} -m cds_service"
    on_path = shutil.which("spine-cds")
    if on_path and os.path.abspath(on_path) == os.path.abspath(script):
        return "spine-cds"
    return _from_caller(script)


def pip_command() -> str:
    """How to run this installation's pip from the user's directory."""
    pip = _bin_dir() / "pip"
    if pip.is_file():
        on_path = shutil.which("pip")
        if on_path and os.path.abspath(on_path) == os.path.abspath(pip):
            return "pip"
        return _from_caller(pip)
    return f"{_from_caller(Path(sys.executable))} -m pip"
