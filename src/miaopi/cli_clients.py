"""``miaopi clients``: API clients and their keys."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from miaopi.cli_common import load_settings, open_db

clients_app = typer.Typer(help="API clients and their keys.", no_args_is_help=True)


@clients_app.command("create")
def clients_create(
    role: Annotated[
        str,
        typer.Option(help="employer | channel | auditor | officer | registrar | finance | admin"),
    ],
    name: Annotated[str, typer.Option(help="Who the client is")],
    uscc: Annotated[Optional[str], typer.Option(help="Employer's USCC (role employer)")] = None,  # noqa: UP045
    district: Annotated[Optional[str], typer.Option(help="Auditor's/officer's district")] = None,  # noqa: UP045
) -> None:
    """Create an API client; its key is printed once, alone on the last line."""
    from datetime import UTC, datetime

    from miaopi.usecases import clients
    from miaopi.usecases.errors import InvalidInput

    try:
        clients.checked(role, uscc, district)
    except InvalidInput as exc:
        raise typer.BadParameter(str(exc), param_hint=f"--{exc.loc[-1]}") from None
    engine = open_db(load_settings()).engine
    client, key, assigned = clients.create(engine, role, name, uscc, district, datetime.now(UTC))
    typer.echo(f"created {role} client {client.id} ({name}), key prefix {client.key_prefix}")
    if role == "auditor":
        typer.echo(f"{assigned} waiting audit tasks assigned")
    engine.dispose()
    typer.echo("the key below is shown once; store it now")
    typer.echo(key)


@clients_app.command("revoke")
def clients_revoke(
    key: Annotated[str, typer.Argument(help="The key, mp_<prefix>, or its prefix alone")],
) -> None:
    """Revoke a client's key: give the key itself, or its prefix (the part after mp_)."""
    from datetime import UTC, datetime

    from miaopi.records.clients import key_prefix_of
    from miaopi.usecases import clients
    from miaopi.usecases.errors import NotFound

    engine = open_db(load_settings()).engine
    prefix = key_prefix_of(key)
    try:
        client, moved = clients.revoke(engine, prefix, datetime.now(UTC))
    except NotFound:
        typer.echo(f"no active key with prefix {prefix}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {prefix} ({client.role} {client.name})")
    if client.role == "auditor":
        typer.echo(f"{moved} open audit tasks handed to other auditors (or back to waiting)")
