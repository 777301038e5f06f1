"""What a server process does once at startup (``settle_for_serving``), in a process of its own:
what it exempts from garbage collection stays exempt for the life of the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stdnum.cn import ric

from miaopi.adapters.ports import REGISTRY_NAMES
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


def test_checking_ids_leaves_the_collector_nothing_new_to_walk(tmp_path: Path) -> None:
    # Every full collection walks whatever has been kept since the freeze, with every request
    # in flight waiting: stdnum's area table, read on first use, is ~14,000 objects that never
    # change, and the memo of areas by year must not add one per entry.
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
    kept = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path,
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert int(kept) < 20, f"{kept.strip()} objects kept after {len(IDS)} checks"
