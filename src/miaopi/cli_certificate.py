"""``miaopi certificate``: verify a certificate offline, rotate the signing key."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer

certificate_app = typer.Typer(help="Approval certificates (policy §11).", no_args_is_help=True)


@certificate_app.command("verify")
def certificate_verify(
    token: Annotated[str, typer.Argument(help="The certificate (the QR code's content)")],
    keys: Annotated[Path, typer.Option(exists=True, help="The JWKS (GET /v1/certificates/keys)")],
    revocations: Annotated[
        Path, typer.Option(exists=True, help="The list (GET /v1/certificates/revocations)")
    ],
    id_number: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation
        typer.Option(help="From the identity card: is it the certificate's?"),
    ] = None,
) -> None:
    """Verify offline, with no network: exit 0 if valid, 1 if revoked or invalid."""
    from miaopi.certificates import tokens

    jwks = json.loads(keys.read_text(encoding="utf-8"))
    listed = revocations.read_text(encoding="utf-8").strip()
    signed = json.loads(listed)["token"] if listed.startswith("{") else listed
    try:
        revoked = tokens.revoked_numbers(signed, jwks)
    except tokens.Invalid as exc:
        typer.echo(f"error: the revocation list is not signed by these keys ({exc})", err=True)
        raise typer.Exit(2) from None
    verdict = tokens.verify(token, jwks, revoked, date.today().isoformat(), id_number)
    typer.echo(json.dumps(verdict.public(), ensure_ascii=False))
    if verdict.status != "valid" or verdict.id_number_matches is False:
        raise typer.Exit(1)


@certificate_app.command("rotate-key")
def certificate_rotate_key() -> None:
    """A new signing key. Production: set it as MIAOPI_SIGNING_KEY and restart; development:
    written to ./var/signing.key. The old key's public half stays published."""
    from miaopi.certificates.signing import DEV_SIGNING_FILE, generate_signing_key
    from miaopi.cli_common import load_settings

    key = generate_signing_key()
    if load_settings().environment == "development":
        DEV_SIGNING_FILE.parent.mkdir(parents=True, exist_ok=True)
        DEV_SIGNING_FILE.write_text(key + "\n")
        DEV_SIGNING_FILE.chmod(0o600)
        typer.echo(f"wrote a new signing key to {DEV_SIGNING_FILE}; restart the service")
    else:
        typer.echo("set MIAOPI_SIGNING_KEY to this and restart the service:")
    typer.echo(key)
