"""``miaopi clients``: API clients and their keys."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from miaopi.cli_common import load_settings, open_db
from miaopi.domain import ROLES

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
    import re

    from miaopi.identifiers import credit_code
    from miaopi.records.clients import create_client

    if role not in ROLES:
        raise typer.BadParameter(f"must be one of {', '.join(ROLES)}", param_hint="--role")
    if role == "employer":
        try:
            uscc = credit_code(uscc or "")
        except ValueError as exc:
            raise typer.BadParameter(f"an employer needs a valid --uscc: {exc}") from None
    elif uscc:
        raise typer.BadParameter("only employers are bound to a USCC", param_hint="--uscc")
    if role in ("auditor", "officer"):
        if not district or not re.fullmatch(r"\d{6}", district):
            raise typer.BadParameter(
                f"an {role} needs a 6-digit --district", param_hint="--district"
            )
    elif district:
        raise typer.BadParameter(
            "only auditors and officers have a district", param_hint="--district"
        )
    settings = load_settings()
    engine = open_db(settings).engine
    client, key = create_client(engine, role, name, uscc=uscc, district=district)
    typer.echo(f"created {role} client {client.id} ({name}), key prefix {client.key_prefix}")
    if role == "auditor":
        from datetime import UTC, datetime

        from miaopi.supervision.queue import assign_waiting

        # Tasks that waited for an auditor from another district may now have one.
        assigned = assign_waiting(engine, datetime.now(UTC))
        typer.echo(f"{assigned} waiting audit tasks assigned")
    engine.dispose()
    typer.echo("the key below is shown once; store it now")
    typer.echo(key)


@clients_app.command("revoke")
def clients_revoke(
    key: Annotated[str, typer.Argument(help="The key, mp_<prefix>, or its prefix alone")],
) -> None:
    """Revoke a client's key: give the key itself, or its prefix (the part after mp_)."""
    from miaopi.records.clients import key_prefix_of, revoke_client

    engine = open_db(load_settings()).engine
    prefix = key_prefix_of(key)
    client = revoke_client(engine, prefix)
    if client is None:
        typer.echo(f"no active key with prefix {prefix}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {prefix} ({client.role} {client.name})")
    if client.role == "auditor":
        from datetime import UTC, datetime

        from miaopi.supervision.queue import release_auditor

        moved = release_auditor(engine, client.id, datetime.now(UTC))
        typer.echo(f"{moved} open audit tasks handed to other auditors (or back to waiting)")
