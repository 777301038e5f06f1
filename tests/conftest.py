from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from miaopi.api.app import create_app
from miaopi.bootstrap import Container, bootstrap
from miaopi.eligibility.engine import RuleEngine
from miaopi.eligibility.ruleset import RuleBook
from miaopi.records.clients import create_client
from miaopi.records.sealing import generate_key
from miaopi.settings import Settings

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules"
# Persona outcomes in adapters/mock/personas.yaml are stated for a day in their window.
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TODAY = date(2026, 11, 22)
EMPLOYER = "91440305MA5F1Q2RXK"
OTHER_EMPLOYER = "91440305MA5G2K7N95"
# One key for the suite's databases; tests of the key itself make their own.
DATA_KEY = generate_key()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def rulebook() -> RuleBook:
    return RuleBook.load(RULES, "4403")


@pytest.fixture(scope="session")
def rule_engine() -> RuleEngine:
    return RuleEngine()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path}/miaopi.db",
        rules_dir=RULES,
        data_key=DATA_KEY,
        _env_file=None,  # type: ignore[call-arg]
    )


class Clock:
    """The service's clock in tests: fixed, and moved on when a test needs time to pass."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def container(settings: Settings, clock: Clock) -> Container:
    return bootstrap(settings, clock=clock)


@pytest.fixture
async def api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://miaopi.test"
    ) as client:
        yield client
    await container.aclose()


@pytest.fixture
def make_key(container: Container) -> Callable[..., dict[str, str]]:
    def make(role: str = "employer", uscc: str | None = EMPLOYER, **kw: str) -> dict[str, str]:
        _, key = create_client(
            container.db, role, f"{role} test", uscc=uscc if role == "employer" else None, **kw
        )
        return {"Authorization": f"Bearer {key}"}

    return make


def application(
    id_number: str = "420102200203151232",
    name: str = "李明",
    diploma_no: str | None = "104861202602000123",
    uscc: str = EMPLOYER,
    **extra: object,
) -> dict[str, object]:
    body: dict[str, object] = {
        "business_type": "graduate",
        "applicant": {"name": name, "id_number": id_number},
        "employer": {"uscc": uscc},
        "claims": {"diploma_no": diploma_no} if diploma_no else {},
        "commitment": {"accepted": True, "version": "2026-01"},
        "consent": {"data_query": True},
    }
    body.update(extra)
    return body
