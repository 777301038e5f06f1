"""Settings from ``MIAOPI_*`` environment variables and an optional ``.env`` (contract.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from miaopi.evidence.ports import REGISTRY_NAMES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MIAOPI_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///./var/miaopi.db"
    # PostgreSQL: the connections each server process keeps for its requests (db.open_on_this_loop);
    # with N processes the server needs N times this, plus 10 each for background work.
    database_pool_size: int = Field(
        default=20, ge=1, le=1000, description="PostgreSQL connections per server process"
    )
    # psycopg prepares a statement on a connection once it has run it five times; a pooler in
    # transaction mode that does not track prepared statements needs this off.
    database_prepared_statements: bool = True
    # A transaction that holds the ledger's head (a migration, an open psql session) would
    # otherwise hold every decision for as long as it lasts (records/engines.py).
    database_lock_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="How long a request waits for a lock another transaction holds; then 503",
    )
    rules_dir: Path | None = Field(
        default=None,
        description="Rule files; default ./rules if present, else the rules installed with miaopi",
    )
    city_prefix: str = Field(default="4403", pattern=r"^\d{2,6}$")
    mock_dataset: Path | None = None
    mock_latency_ms: str = Field(default="", description="e.g. police=40,education=120")
    registry_police_url: str | None = None
    registry_education_url: str | None = None
    registry_overseas_credentials_url: str | None = None
    registry_social_security_url: str | None = None
    registry_credit_url: str | None = None
    registry_hrss_url: str | None = None
    # The budget of one registry query, its retry included (see adapters/http/base.py).
    registry_timeout_s: float = Field(default=3.0, gt=0.2, le=60)
    registry_timeouts_s: str = Field(
        default="", description="Per-registry budgets overriding it, e.g. education=5,police=2"
    )
    registry_breaker_failures: int = Field(
        default=5, ge=1, description="Unanswered queries in a row that open a registry's breaker"
    )
    registry_breaker_reset_s: float = Field(
        default=30.0, gt=0, description="How long an open breaker fails fast before a probe"
    )
    # Keep-alive shorter than the registries' own (commonly 5 s or more), so a pooled
    # connection is never one the server has just closed.
    registry_keepalive_s: float = Field(default=4.0, gt=0)
    # How long `miaopi serve` keeps an idle client connection open. Behind a load balancer
    # that keeps its own connections to the service open longer (an idle timeout of 60 s is
    # common), it must be longer than that one, or the balancer sends a request on a connection
    # the service is closing and answers 502.
    http_keepalive_s: float = Field(
        default=5.0, gt=0, le=3600, description="Idle client connections are closed after this"
    )
    data_key: str | None = None
    # Policy §11: the Ed25519 key certificates are signed with (`miaopi certificate rotate-key`).
    signing_key: str | None = None
    # The CJK font the certificate PDF is printed with; unset, Debian's fonts-wqy-microhei.
    certificate_font: Path | None = None
    max_body_bytes: int = Field(default=65_536, ge=1024, description="Larger bodies get 413")
    # Policy §9: a document for the counter review is at most 10 MB.
    max_document_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Larger uploaded documents get 413"
    )
    rate_limit_per_minute: int = Field(
        default=1200, ge=0, description="Requests a minute per API client and process; 0 = off"
    )
    rate_limit_burst: int = Field(default=100, ge=1, description="Requests a client may burst")
    # Past what a process's CPU can decide, more decisions at once only wait on its event loop,
    # and that wait counts against their registry budgets (limits.DecisionLimit).
    max_decisions_in_flight: int = Field(
        default=128,
        ge=0,
        le=100_000,
        description="Decisions one server process makes at once; over it, 503; 0 = off",
    )
    # Policy §9: referrals owed only to registries that did not answer are decided again when
    # due; every instance looks this often, and each attempt is taken by one of them.
    second_try_interval_s: float = Field(
        default=30,
        ge=0,
        description="Look for second tries that are due this often, in seconds; 0 = off",
    )
    # Policy §10: webhooks. Hosts listed here may resolve to private addresses (a receiver
    # inside the authority's network); every other host must resolve to public addresses only.
    webhook_allowed_hosts: str = Field(
        default="", description="Comma-separated host names webhooks may reach privately"
    )
    webhook_timeout_s: float = Field(
        default=10, gt=0, le=60, description="A webhook receiver that takes longer is cut off"
    )
    webhook_interval_s: float = Field(
        default=1, ge=0, description="Every process sends due webhooks this often; 0 = off"
    )
    batch_interval_s: float = Field(
        default=1, ge=0, description="Every process decides pending batch items this often; 0 = off"
    )
    recheck_interval_s: float = Field(
        default=0,
        ge=0,
        description="Run the periodic re-check in-process every this many seconds; 0 = off "
        "(run `miaopi audit recheck` from a scheduler instead)",
    )

    @field_validator("mock_latency_ms")
    @classmethod
    def _latency(cls, v: str) -> str:
        parse_latency(v)
        return v

    @field_validator("registry_timeouts_s")
    @classmethod
    def _timeouts(cls, v: str) -> str:
        for name, seconds in parse_per_registry(v, "seconds").items():
            if not 0.2 < seconds <= 60:
                raise ValueError(f"the budget for {name} must be over 0.2 and at most 60 seconds")
        return v

    def registry_timeout(self, name: str) -> float:
        return parse_per_registry(self.registry_timeouts_s, "seconds").get(
            name, self.registry_timeout_s
        )

    def registry_url(self, name: str) -> str | None:
        return getattr(self, f"registry_{name}_url")

    def webhook_hosts(self) -> frozenset[str]:
        return frozenset(
            h.strip().lower() for h in self.webhook_allowed_hosts.split(",") if h.strip()
        )

    def latency(self) -> dict[str, float]:
        return parse_latency(self.mock_latency_ms)

    def resolved_rules_dir(self) -> Path:
        if self.rules_dir is not None:
            return self.rules_dir
        local = Path("rules")
        if local.is_dir() and any(local.glob("*.yaml")):
            return local
        from importlib import resources

        return Path(str(resources.files("miaopi.bundled_rules")))


def parse_per_registry(text: str, unit: str) -> dict[str, float]:
    """``police=40,education=120`` as numbers by registry; ValueError naming what is wrong."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in REGISTRY_NAMES:
            raise ValueError(f"expected registry={unit} with a known registry, got {part!r}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{unit} for {name.strip()} is not a number: {value!r}") from None
        if number < 0:
            raise ValueError(f"{unit} for {name.strip()} is negative")
        out[name.strip()] = number
    return out


def parse_latency(text: str) -> dict[str, float]:
    return parse_per_registry(text, "milliseconds")
