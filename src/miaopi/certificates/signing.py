"""The authority's signing key for approval certificates (policy.md §11): Ed25519, rotated.

``MIAOPI_SIGNING_KEY`` holds the current private key: its 32-byte seed in URL-safe base64
(`miaopi certificate rotate-key` makes one). Production refuses to start without it; in
development a key is generated once under ``./var/``, as the data key is. A key's id is its
RFC 7638 thumbprint, so the same key always has the same ``kid``. The public half of every key
ever used stays published (``records/signing_keys.py``): a certificate signed before a rotation
keeps verifying after it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc.jwk import OKPKey

from miaopi.dev_keys import kept_in

log = logging.getLogger(__name__)
DEV_SIGNING_FILE = Path("var/signing.key")


class SigningKeyError(Exception):
    """No usable signing key: missing in production, or malformed."""


def generate_signing_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def signing_key(encoded: str) -> OKPKey:
    try:
        seed = base64.urlsafe_b64decode(encoded.strip() + "=" * (-len(encoded.strip()) % 4))
    except (binascii.Error, ValueError):
        seed = b""
    if len(seed) != 32:
        raise SigningKeyError(
            "MIAOPI_SIGNING_KEY must be a 32-byte Ed25519 seed in URL-safe base64 "
            "(make one with `miaopi certificate rotate-key`)"
        )
    key = OKPKey.import_key(Ed25519PrivateKey.from_private_bytes(seed))
    return OKPKey.import_key(key.as_dict(private=True), parameters={"kid": key.thumbprint()})


def resolve_signing_key(
    configured: str | None, environment: str, dev_file: Path = DEV_SIGNING_FILE
) -> OKPKey:
    """The configured key; in development without one, a key kept in ``./var/``."""
    if configured:
        return signing_key(configured)
    if environment == "production":
        raise SigningKeyError("MIAOPI_SIGNING_KEY is required when MIAOPI_ENVIRONMENT=production")
    encoded, made = kept_in(dev_file, generate_signing_key)
    if made:
        log.warning("generated a development signing key in %s; set MIAOPI_SIGNING_KEY", dev_file)
    return signing_key(encoded)
