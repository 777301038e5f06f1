"""What every ``miaopi`` command starts from: the settings, checked, and the database."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from miaopi.records.database import Database
    from miaopi.settings import Settings


def load_settings() -> Settings:
    """The settings; in production, only with a URL for every registry the rules ask."""
    from pydantic import ValidationError

    from miaopi.bootstrap import RegistriesMissing, check_registries
    from miaopi.eligibility.model import RuleFileError
    from miaopi.eligibility.ruleset import RuleBook
    from miaopi.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        for err in exc.errors():
            field = "MIAOPI_" + "_".join(map(str, err["loc"])).upper()
            typer.echo(f"error: {field}: {err['msg']}", err=True)
        raise typer.Exit(2) from None
    if settings.environment == "production":
        try:
            book = RuleBook.load(settings.resolved_rules_dir(), settings.city_prefix)
            check_registries(settings, book)
        except RuleFileError:
            pass  # the command that needs the rules says what is wrong with them
        except RegistriesMissing as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    return settings


def open_db(settings: Settings, *, migrate: bool = True) -> Database:
    """The database, migrated, with its data key (and the signing key the service needs); a
    clear error and exit 1 without them."""
    from miaopi.bootstrap import open_database
    from miaopi.certificates.signing import SigningKeyError, resolve_signing_key
    from miaopi.records.sealing import DataKeyError

    try:
        database = open_database(settings, migrate=migrate)
    except DataKeyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    try:  # refused now, not in each worker as it starts
        resolve_signing_key(settings.signing_key, settings.environment)
    except SigningKeyError as exc:
        database.dispose()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    return database
