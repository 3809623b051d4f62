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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from spine_cds_dev.service_process import ServiceProcess
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request

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


def arena_reserves(pid: int) -> int:
    """glibc's extra arenas in a process: each reserves a 64 MB region, mapped with no
    access beyond the part in use (a thread's stack guard is one page)."""
    count = 0
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[1] == "---p":
            start, end = (int(x, 16) for x in parts[0].split("-"))
            count += end - start > 1 << 20
    return count


def worker_arenas(tmp_path: Path, env: dict[str, str]) -> list[int]:
    """Extra arenas in each worker of a real ``spine-cds serve`` after 16 calls, 8 at once."""
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    tmp_path.mkdir()
    env = env | {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    with ServiceProcess(env=env, log_path=tmp_path / "service.log") as service:
        url = f"{service.url}/cds-services/{SELECT_ID}"

        def call(_: int) -> int:
            return requests.post(url, json=body, timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(call, range(16))) == {200}
        assert service.process is not None
        master = service.process.pid
        workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return [arena_reserves(int(pid)) for pid in workers]


@pytest.mark.integration
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_the_workers_of_serve_allocate_from_one_arena(tmp_path: Path) -> None:
    clean = {"MALLOC_ARENA_MAX": ""}  # as if unset: the service decides
    assert worker_arenas(tmp_path / "one", clean) == [0, 0]
    # the same count sees the arenas glibc makes when it is left to itself
    assert all(n > 0 for n in worker_arenas(tmp_path / "many", {"MALLOC_ARENA_MAX": "8"}))
