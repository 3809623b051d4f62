"""One malloc arena for a worker's threads (``cds_service.server.one_malloc_arena``).

Observed the way glibc itself reports it: ``malloc_stats`` prints one "Arena N:" block
per arena, to standard error. Each case runs in a fresh interpreter, as a worker does.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)

# Four threads that each allocate and free, then glibc's count of arenas.
PROGRAM = """
import ctypes, sys, threading
from cds_service.server import one_malloc_arena
if sys.argv[1] == "set":
    print(one_malloc_arena(), flush=True)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def work():
    for _ in range(50):
        libc.free(libc.malloc(200_000))
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
libc.malloc_stats()
"""


def arenas(mode: str, **env: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean | env,
        check=True,
    )
    return len(re.findall(r"^Arena \d+:", done.stderr, re.M)), done.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_the_threads_share_one_arena_where_glibc_would_give_each_its_own() -> None:
    default, _ = arenas("leave")
    assert default > 1  # what the setting is for: glibc's own choice
    one, said = arenas("set")
    assert one == 1
    assert said == "malloc arenas: one for all threads"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_an_operators_own_malloc_arena_max_is_kept() -> None:
    count, said = arenas("set", MALLOC_ARENA_MAX="3")
    assert said == "malloc arenas: MALLOC_ARENA_MAX from the environment"
    assert 1 < count <= 3
