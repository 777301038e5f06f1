"""The ``miaopi`` command line (contract.md)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from miaopi.cli_batch import batch_app
from miaopi.cli_certificate import certificate_app
from miaopi.cli_clients import clients_app
from miaopi.cli_common import load_settings, open_db

app = typer.Typer(
    help="miaopi — instant approval (秒批) of talent-introduction applications.",
    no_args_is_help=True,
    add_completion=False,
)
rules_app = typer.Typer(help="Rule files.", no_args_is_help=True)
mock_app = typer.Typer(help="Mock registries.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
audit_app = typer.Typer(help="Post-hoc supervision.", no_args_is_help=True)
ledger_app = typer.Typer(help="The tamper-evident decision ledger.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
app.add_typer(rules_app, name="rules")
app.add_typer(mock_app, name="mock")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(ledger_app, name="ledger")
events_app = typer.Typer(help="Events and their webhooks.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(batch_app, name="batch")
app.add_typer(certificate_app, name="certificate")


keys_app = typer.Typer(help="The data key that seals personal data at rest.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random data key, for MIAOPI_DATA_KEY."""
    from miaopi.records.sealing import generate_key

    typer.echo(generate_key())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run the API. Applies migrations first, then starts the workers."""
    import uvicorn

    from miaopi.eligibility.model import RuleFileError
    from miaopi.eligibility.ruleset import RuleBook

    settings = load_settings()
    open_db(settings).dispose()
    try:  # refuse to start on broken rules, with the reason, before forking workers
        book = RuleBook.load(settings.resolved_rules_dir(), settings.city_prefix)
    except RuleFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"rules: {book.source} ({', '.join(book.business_types())})", err=True)
    metrics_dir = None
    if workers > 1:
        # Each worker writes its metrics here and /metrics sums them (telemetry/metrics.py). A fresh
        # directory per start: samples of processes from an earlier run must not count.
        import os
        import tempfile

        metrics_dir = tempfile.mkdtemp(prefix="miaopi-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from miaopi.telemetry.logs import logging_config

    try:
        uvicorn.run(
            "miaopi.api.app:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=logging_config(),
            access_log=False,  # miaopi.http logs each request, with its id and route template
            # uvicorn annotates an int but schedules a float as well (loop.call_later).
            timeout_keep_alive=settings.http_keepalive_s,  # type: ignore[arg-type]
        )
    finally:
        if metrics_dir is not None:  # every restart would otherwise leave one behind
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


@rules_app.command("validate")
def rules_validate() -> None:
    """Check every rule file against its schema and the fact catalogue."""
    from miaopi.eligibility.model import RuleFileError
    from miaopi.eligibility.ruleset import RuleBook

    settings = load_settings()
    try:
        book = RuleBook.load(settings.resolved_rules_dir(), settings.city_prefix)
    except RuleFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for r in book.rulesets:
        until = r.effective_to.isoformat() if r.effective_to else "…"
        typer.echo(
            f"ok  {r.business_type:<18} {r.version}  {r.effective_from} → {until}  "
            f"{len(r.criteria)} criteria  {r.fingerprint[:19]}"
        )
    from datetime import date

    from miaopi.eligibility.calendar import CalendarError, WorkingCalendar, check_horizon

    try:
        calendar = WorkingCalendar.load(settings.resolved_rules_dir())
        check_horizon(calendar, date.today())
    except CalendarError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    years = sorted(calendar.years)
    typer.echo(f"ok  working-day calendar      {years[0]}–{years[-1]}  "
               f"{len(calendar.holidays)} holidays, {len(calendar.makeup_working_days)} "
               "make-up working days")  # fmt: skip


@rules_app.command("test")
def rules_test() -> None:
    """Run every rule test case in <rules>/tests; names each failing file and case."""
    from miaopi.eligibility.casetests import CaseFileError, run_all
    from miaopi.eligibility.model import RuleFileError

    settings = load_settings()
    try:
        results = run_all(settings.resolved_rules_dir(), settings.city_prefix)
    except (RuleFileError, CaseFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    from miaopi.eligibility import calendar as working_days

    try:
        rules_dir = settings.resolved_rules_dir()
        calendar_cases = working_days.run_cases(
            rules_dir, working_days.WorkingCalendar.load(rules_dir)
        )
    except working_days.CalendarError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    failed = [r for r in results if not r.ok]
    for r in results:
        typer.echo(f"{'ok  ' if r.ok else 'FAIL'}  {r.file}: {r.name}")
        for problem in r.problems:
            typer.echo(f"        {problem}")
    for c in calendar_cases:
        typer.echo(f"{'ok  ' if c.ok else 'FAIL'}  {working_days.CASES_FILE}: {c.name}")
        if c.problem:
            typer.echo(f"        {c.problem}")
    failed_days = [c for c in calendar_cases if not c.ok]
    total = len(results) + len(calendar_cases)
    typer.echo(f"{total - len(failed) - len(failed_days)} passed, "
               f"{len(failed) + len(failed_days)} failed")  # fmt: skip
    if failed or failed_days or not results:
        raise typer.Exit(1)


@mock_app.command("serve")
def mock_serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8100,
) -> None:
    """Serve the mock registries over HTTP, each under /{registry}/ (e.g. /police)."""
    import asyncio
    import contextlib

    import uvloop

    from miaopi.bootstrap import mock_dataset, serve_mocks

    settings = load_settings()
    try:
        dataset = mock_dataset(settings)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None

    def started(bound: int) -> None:
        typer.echo(f"mock registries on http://{host}:{bound}/{{registry}}", err=True)

    # On uvloop, as the service's own lookups are: the mocks share a developer's machine (and
    # the benchmark's) with the service, and libuv's loop answers a lookup for less CPU.
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        runner.run(serve_mocks(settings, dataset, host, port, started))


@audit_app.command("recheck")
def audit_recheck() -> None:
    """Run the periodic re-check now: approvals 30–90 days old, against the registries."""
    import asyncio

    from miaopi.bootstrap import bootstrap

    settings = load_settings()
    open_db(settings).dispose()  # migrated, and the key checked, with a clear error

    async def run() -> str:
        container = bootstrap(settings)
        try:
            return (await container.rechecker.run()).summary()
        finally:
            await container.aclose()

    typer.echo(asyncio.run(run()))


@events_app.command("deliver")
def events_deliver(
    once: Annotated[bool, typer.Option(help="One pass, then exit (else until stopped)")] = False,
) -> None:
    """Send due webhooks: a delivery worker apart from the serving processes (policy §10)."""
    import asyncio

    from miaopi.bootstrap import bootstrap

    settings = load_settings()
    open_db(settings).dispose()  # migrated, and the key checked, with a clear error

    async def run() -> None:
        container = bootstrap(settings)
        container.database.open_on_this_loop()
        try:
            if once:
                typer.echo(f"attempted {await container.deliverer.run_once()} deliveries")
            else:
                await container.deliverer.run_every(settings.webhook_interval_s or 1.0)
        finally:
            await container.aclose()

    from contextlib import suppress

    with suppress(KeyboardInterrupt):  # stopped: deliveries in flight were given back
        asyncio.run(run())


@mock_app.command("generate")
def mock_generate(
    seed: Annotated[int, typer.Option(help="Same seed, same size, same day: same bytes")],
    persons: Annotated[int, typer.Option(min=1, max=10_000_000, help="How many persons")],
    output: Annotated[str, typer.Option("-o", "--output", help="File to write (JSON)")],
    as_of: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation
        typer.Option(help="Reference day YYYY-MM-DD for ages and histories; default today"),
    ] = None,
) -> None:
    """Write a deterministic synthetic dataset for the mock registries (MIAOPI_MOCK_DATASET)."""
    from datetime import date
    from pathlib import Path

    from miaopi.bootstrap import generate_population

    try:
        today = date.fromisoformat(as_of) if as_of else date.today()
    except ValueError:
        raise typer.BadParameter("a date YYYY-MM-DD", param_hint="--as-of") from None
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for chunk in generate_population(seed, persons, today):
            out.write(chunk)
    typer.echo(f"wrote {persons} persons to {path}")


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Check the whole decision ledger against the stored rows; name the first broken entry."""
    from sqlalchemy.exc import SQLAlchemyError

    from miaopi.records.ledger_verify import verify
    from miaopi.records.migrate import pending

    # A verifier does not write: no migration is applied, and none may be pending.
    database = open_db(load_settings(), migrate=False)
    try:
        behind = pending(database.engine)
        if behind is not None:
            typer.echo(
                f"error: the database is at revision {behind[0]}, not {behind[1]}: "
                "apply the migrations first (miaopi db upgrade)",
                err=True,
            )
            raise typer.Exit(2)
        verdict = verify(database.engine)
    except SQLAlchemyError as exc:
        typer.echo(f"error: the database could not be read ({type(exc).__name__})", err=True)
        raise typer.Exit(2) from None
    finally:
        database.dispose()
    if verdict.intact:
        typer.echo(f"ledger intact: {verdict.entries} entries")
        return
    typer.echo(f"ledger broken at {verdict.where()}: {verdict.reason}", err=True)
    raise typer.Exit(1)


@app.command()
def openapi(
    output: Annotated[str, typer.Option("-o", "--output", help="File to write")] = "openapi.yaml",
) -> None:
    """Write the API's OpenAPI document (openapi.yaml is checked in; a test fails on drift)."""
    from pathlib import Path

    from miaopi.api.openapi import openapi_yaml

    Path(output).write_text(openapi_yaml(), encoding="utf-8")
    typer.echo(f"wrote {output}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations to MIAOPI_DATABASE_URL."""

    settings = load_settings()
    engine = open_db(settings).engine
    typer.echo(f"database at head: {engine.url.render_as_string(hide_password=True)}")


if __name__ == "__main__":
    app()
