"""`miaopi clients revoke` takes what an operator has in hand: the key, or its prefix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from miaopi.bootstrap import open_database
from miaopi.records.clients import authenticate
from miaopi.settings import Settings
from tests.conftest import DATA_KEY, RULES


def _cli(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MIAOPI_DATABASE_URL": url, "MIAOPI_DATA_KEY": DATA_KEY,
           "MIAOPI_RULES_DIR": str(RULES)}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "miaopi.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "given",
    [
        lambda key: key,  # the whole key, as the HR department handed it back
        lambda key: "_".join(key.split("_")[:2]),  # mp_<prefix>
        lambda key: key.split("_")[1],  # the prefix alone
    ],
    ids=["key", "mp_prefix", "prefix"],
)
def test_a_key_is_revoked_by_itself_or_its_prefix(
    database_url: str, tmp_path: Path, given: object
) -> None:
    made = _cli("clients", "create", "--role", "channel", "--name", "portal",
                url=database_url, cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    revoked = _cli("clients", "revoke", given(key), url=database_url, cwd=tmp_path)  # type: ignore[operator]
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in revoked.stdout
    assert "channel portal" in revoked.stdout
    again = _cli("clients", "revoke", key, url=database_url, cwd=tmp_path)
    assert again.returncode == 1  # already revoked: nothing active has that prefix
    settings = Settings(database_url=database_url, data_key=DATA_KEY, _env_file=None)  # type: ignore[call-arg]
    database = open_database(settings, migrate=False)
    try:
        assert authenticate(database.engine, key) is None
    finally:
        database.dispose()
