"""What a plain install carries: every module, the bundled rules and the mock personas."""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

from miaopi.adapters.mock.dataset import Dataset
from miaopi.eligibility.ruleset import RuleBook
from miaopi.settings import Settings
from tests.conftest import DATA_KEY


def test_every_module_of_the_distribution_imports() -> None:
    import miaopi.adapters

    # Walk the remapped package too: an editable install does not put it on miaopi.__path__.
    names = sorted(
        {m.name for m in pkgutil.walk_packages(miaopi.__path__, "miaopi.")}
        | {m.name for m in pkgutil.walk_packages(miaopi.adapters.__path__, "miaopi.adapters.")}
    )
    # Migration scripts run only inside Alembic; test_records applies them.
    for name in (n for n in names if not n.startswith("miaopi.records.migrations.")):
        importlib.import_module(name)
    assert "miaopi.adapters.http.registries" in names


def test_every_package_in_the_source_tree_is_installed() -> None:
    # A package missing from pyproject's list exists in the checkout but not in the install.
    repo = Path(__file__).resolve().parents[1]
    roots = {repo / "src" / "miaopi": "miaopi", repo / "adapters": "miaopi.adapters"}
    for root, name in roots.items():
        for init in root.rglob("__init__.py"):
            parts = init.parent.relative_to(root).parts
            package = ".".join((name, *parts))
            assert importlib.util.find_spec(package) is not None, f"{package} is not installed"


def test_without_a_rules_folder_the_installed_rules_are_used(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    rules_dir = Settings(_env_file=None).resolved_rules_dir()  # type: ignore[call-arg]
    assert rules_dir != Path("rules")
    assert RuleBook.load(rules_dir, "4403").business_types() == [
        "graduate",
        "in_service",
        "overseas_returnee",
        "postdoc",
    ]
    assert len(Dataset.bundled().persons) >= 17


def test_the_cli_runs_from_a_directory_without_the_source(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MIAOPI_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "MIAOPI_DATA_KEY": DATA_KEY,
    }
    env.pop("MIAOPI_RULES_DIR", None)
    done = subprocess.run(
        [sys.executable, "-m", "miaopi.cli", "rules", "validate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "graduate" in done.stdout
    assert "2021.08" in done.stdout
