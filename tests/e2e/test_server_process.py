"""What a server process does once at startup (``settle_for_serving``), in a process of its own:
what it exempts from garbage collection stays exempt for the life of the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stdnum.cn import ric

from miaopi.evidence.ports import REGISTRY_NAMES
from tests.conftest import DATA_KEY, RULES

# Resident ID numbers of four areas born over 26 years: 104 lookups of an area in a year.
IDS = [
    f"{area}{year}0101123" + ric.calc_check_digit(f"{area}{year}0101123" + "0")
    for area in ("420102", "440305", "110103", "310101")
    for year in range(1980, 2006)
]

SCRIPT = f"""
import gc
from miaopi.api.app import settle_for_serving
from miaopi.bootstrap import bootstrap
from miaopi.identifiers import resident_id

settle_for_serving(bootstrap())
before = len(gc.get_objects())
for number in {IDS!r}:
    try:
        resident_id(number)
    except ValueError:  # an area that was gone by then
        pass
gc.collect()
print(len(gc.get_objects()) - before)
"""


def _in_a_server_process(script: str, tmp_path: Path) -> str:
    """Run ``script`` in a process of its own, as a server process is set up; its output."""
    env = {
        **os.environ,
        "MIAOPI_DATABASE_URL": f"sqlite:///{tmp_path}/miaopi.db",
        "MIAOPI_DATA_KEY": DATA_KEY,
        "MIAOPI_RULES_DIR": str(RULES),
        # Registries by URL, as in production (nothing is asked of them here): the mock
        # registries in process would read the table at startup, checking their population.
        **{
            f"MIAOPI_REGISTRY_{name.upper()}_URL": f"http://127.0.0.1:9/{name}"
            for name in REGISTRY_NAMES
        },
    }
    return subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path,
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def test_checking_ids_leaves_the_collector_nothing_new_to_walk(tmp_path: Path) -> None:
    # Every full collection walks whatever has been kept since the freeze, with every request
    # in flight waiting: stdnum's area table, read on first use, is ~14,000 objects that never
    # change, and the memo of areas by year must not add one per entry.
    kept = _in_a_server_process(SCRIPT, tmp_path)
    assert int(kept) < 20, f"{kept.strip()} objects kept after {len(IDS)} checks"


COLLECTING = """
import gc
from miaopi.api.app import settle_for_serving
from miaopi.bootstrap import bootstrap

settle_for_serving(bootstrap())


def collections():
    return sum(generation["collections"] for generation in gc.get_stats())


# Requests in flight hold their objects until they end, then free them all.
before = collections()
for _ in range(50):
    in_flight = [[] for _ in range(10_000)]
    del in_flight
bursts = collections() - before

freed = 0


class Node:
    def __del__(self):
        global freed
        freed += 1


for _ in range(100_000):  # garbage that only reference counting cannot free
    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
print(bursts, freed)
"""


def test_a_server_process_collects_cyclic_garbage_but_not_at_every_burst_of_requests(
    tmp_path: Path,
) -> None:
    # Bursts of objects alive at once, as requests in flight hold them, started a collection
    # every 700 (CPython's threshold), each finding nothing: 0.2 ms of a decision's CPU.
    bursts, freed = map(int, _in_a_server_process(COLLECTING, tmp_path).split())
    assert bursts == 0
    # Of 200,000: memory does not grow with garbage; up to a threshold's worth of it waits.
    assert freed >= 150_000
