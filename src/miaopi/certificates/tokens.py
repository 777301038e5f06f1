"""Approval certificates and the revocation list as JWS (RFC 7515), signed with Ed25519.

A certificate is a JWS in compact serialization whose header names the key (``kid``) and whose
payload is the approval: its number, business type, the masked name, the employer, the
decision date, the rule version and fingerprint, its expiry, and a binding to the ID number.
The binding is a salted scrypt hash: a verifier who types the ID number from the identity card
can check it offline, and the token alone does not reveal the number (its cost makes trying
every ID number of a birth date impractical). The algorithm is RFC 8037's ``EdDSA``, as the
contract names it and as every JOSE library verifies it (RFC 9864's ``Ed25519`` is the same
signature under a newer name that not every verifier knows yet).

Anyone with the published keys (a JWKS) and the latest signed revocation list can verify a
certificate with no network: ``verify`` here, ``miaopi certificate verify``, or any JOSE
library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey

ALG = "EdDSA"
CERTIFICATE = "miaopi-certificate+jwt"
REVOCATIONS = "miaopi-revocations+jwt"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def id_binding(id_number: str, salt: str) -> str:
    """The certificate's binding to the ID number (see the module)."""
    digest = hashlib.scrypt(
        id_number.strip().upper().encode(), salt=salt.encode(), n=2**14, r=8, p=1, dklen=32
    )
    return _b64(digest)


def new_salt() -> str:
    return _b64(secrets.token_bytes(16))


def _sign(key: OKPKey, kind: str, claims: dict[str, Any]) -> str:
    header = {"alg": ALG, "kid": key.kid, "typ": kind}
    payload = json.dumps(claims, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns of RFC 9864 on "EdDSA": see the module
        return jws.serialize_compact(header, payload.encode(), key, algorithms=[ALG])


def sign_certificate(key: OKPKey, claims: dict[str, Any]) -> str:
    return _sign(key, CERTIFICATE, claims)


def sign_revocations(key: OKPKey, numbers: list[str], issued_at: datetime) -> str:
    return _sign(key, REVOCATIONS, {"revoked": sorted(numbers), "iat": int(issued_at.timestamp())})


def payload(token: str) -> dict[str, Any]:
    """The claims of a token this service signed and stored, read without verifying it."""
    part = token.split(".")[1]
    return cast(dict[str, Any], json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


class Invalid(Exception):
    """Not a token signed by one of the published keys, or not of the kind expected."""


def opened(token: str, jwks: dict[str, Any], kind: str) -> dict[str, Any]:
    """The claims of a token of ``kind`` signed by a key of ``jwks``; ``Invalid`` otherwise."""
    try:
        keys = KeySet.import_key_set(cast(Any, jwks))  # a JWKS as parsed from JSON
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = jws.deserialize_compact(token.strip(), keys, algorithms=[ALG])
        if found.headers().get("typ") != kind:
            raise Invalid("not a token of this kind")
        claims = json.loads(found.payload)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise Invalid(str(exc) or type(exc).__name__) from None
    if not isinstance(claims, dict):
        raise Invalid("not a token of this kind")
    return claims


@dataclass(frozen=True)
class Verdict:
    status: str  # valid | revoked | invalid
    claims: dict[str, Any] | None = None
    id_number_matches: bool | None = None

    def public(self) -> dict[str, Any]:
        """What anyone may be told: no personal data beyond the masked name."""
        body: dict[str, Any] = {"status": self.status}
        if self.claims is not None:
            body.update({k: self.claims.get(k) for k in
                         ("approval_number", "business_type", "name", "decided_on",
                          "expires_on")})  # fmt: skip
        if self.id_number_matches is not None:
            body["id_number_matches"] = self.id_number_matches
        return body


def verify(
    token: str,
    jwks: dict[str, Any],
    revoked: set[str],
    today: str,
    id_number: str | None = None,
) -> Verdict:
    """Valid, revoked or invalid (a bad signature, an unknown key, expired), and whether the
    typed ID number is the one the certificate is bound to."""
    try:
        claims = opened(token, jwks, CERTIFICATE)
    except Invalid:
        return Verdict("invalid")
    matches = None
    if id_number is not None:
        binding = id_binding(id_number, str(claims.get("id_salt", "")))
        matches = hmac.compare_digest(binding, str(claims.get("id_binding", "")))
    if str(claims.get("expires_on", "")) < today:
        return Verdict("invalid", claims, matches)
    if claims.get("approval_number") in revoked:
        return Verdict("revoked", claims, matches)
    return Verdict("valid", claims, matches)


def revoked_numbers(token: str, jwks: dict[str, Any]) -> set[str]:
    """The approval numbers of a signed revocation list (``Invalid`` if it is not one)."""
    claims = opened(token, jwks, REVOCATIONS)
    numbers = claims.get("revoked")
    if not isinstance(numbers, list):
        raise Invalid("not a revocation list")
    return {str(n) for n in numbers}
