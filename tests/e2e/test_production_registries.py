"""Production never decides against the bundled personas: every registry needs a real URL."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from miaopi.bootstrap import RegistriesMissing, bootstrap
from miaopi.evidence.ports import REGISTRY_NAMES
from miaopi.settings import Settings
from tests.conftest import DATA_KEY, RULES


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "miaopi.cli", *args],
        env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def _production(tmp_path: Path, *, without: tuple[str, ...]) -> dict[str, str]:
    env = {
        "MIAOPI_ENVIRONMENT": "production",
        "MIAOPI_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
        "MIAOPI_RULES_DIR": str(RULES),
        "MIAOPI_DATA_KEY": DATA_KEY,
    }
    for name in REGISTRY_NAMES:
        variable = f"MIAOPI_REGISTRY_{name.upper()}_URL"
        # Unset, and also set empty: an empty value in a deployment's file counts as unset.
        env[variable] = "" if name in without else f"https://{name}.invalid/"
    return env


@pytest.mark.parametrize("command", [("serve", "--port", "0"), ("audit", "recheck")])
def test_production_names_every_registry_without_a_url_and_does_not_start(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = _production(tmp_path, without=("police", "hrss"))
    started = _cli(*command, env=env, cwd=tmp_path)
    assert started.returncode == 2
    assert "MIAOPI_REGISTRY_POLICE_URL" in started.stderr
    assert "MIAOPI_REGISTRY_HRSS_URL" in started.stderr
    assert "MIAOPI_REGISTRY_EDUCATION_URL" not in started.stderr
    assert not (tmp_path / "p.db").exists()  # refused before the database was touched


def test_production_in_process_refuses_too(tmp_path: Path) -> None:
    # create_app_from_env (each uvicorn worker) goes through bootstrap, not the CLI.
    settings = Settings(
        environment="production",
        database_url=f"sqlite:///{tmp_path}/p.db",
        rules_dir=RULES,
        data_key=DATA_KEY,
        registry_credit_url="https://credit.invalid/",
    )
    with pytest.raises(RegistriesMissing) as refused:
        bootstrap(settings)
    assert "credit" not in refused.value.names
    assert {"police", "education", "social_security", "overseas_credentials", "hrss"} <= set(
        refused.value.names
    )


@pytest.mark.anyio
async def test_development_says_which_registries_are_mocks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/d.db",
        rules_dir=RULES,
        data_key=DATA_KEY,
        registry_police_url="http://127.0.0.1:9/police",
    )
    with caplog.at_level(logging.WARNING, logger="miaopi.bootstrap"):
        container = bootstrap(settings)
    await container.aclose()
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "mock registries stand in for" in said
    assert "education" in said
    assert "police" not in said
