"""Personal data sealed at rest: AES-256-GCM for values, a keyed hash for lookups.

One master key (``MIAOPI_DATA_KEY``, 32 random bytes in URL-safe base64) yields two subkeys,
one that seals and one that makes lookup hashes, so knowing a lookup hash says nothing about
the sealing key. A sealed value is ``s1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``; the
column it belongs to is authenticated with it, so a value copied into another column does not
open. The key id (from the key itself, not secret) lets startup tell a wrong key from a
damaged value.

Columns say what they hold with the ``SealedText``, ``SealedJSON`` and ``SealedBytes`` types;
the key is bound to an engine's dialect, so every engine opens only what its own key sealed
and a test may run several databases with different keys side by side.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic_core import to_json
from sqlalchemy import Engine, LargeBinary, Text, TypeDecorator, inspect, text
from sqlalchemy.engine import Dialect

from miaopi.dev_keys import kept_in

log = logging.getLogger(__name__)

PREFIX = "s1"
DEV_KEY_FILE = Path("var/data.key")


class DataKeyError(Exception):
    """No usable key: missing in production, malformed, or not the database's key."""


class SealBroken(Exception):
    """A sealed value that does not open: changed in the database, or another key's."""


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def generate_key() -> str:
    return _b64encode(secrets.token_bytes(32))


class DataKey:
    def __init__(self, encoded: str) -> None:
        try:
            master = _b64decode(encoded.strip())
        except (binascii.Error, ValueError):
            master = b""
        if len(master) != 32:
            raise DataKeyError(
                "MIAOPI_DATA_KEY must be 32 random bytes in URL-safe base64 "
                "(make one with `miaopi keys generate`)"
            )
        self._aead = AESGCM(hmac.digest(master, b"miaopi seal v1", "sha256"))
        self._lookup = hmac.digest(master, b"miaopi lookup v1", "sha256")
        self.key_id = hashlib.sha256(b"miaopi key id|" + master).hexdigest()[:8]

    def seal(self, plaintext: str, column: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), column.encode())
        return f"{PREFIX}.{self.key_id}.{_b64encode(nonce + sealed)}"

    def open(self, token: str, column: str) -> str:
        prefix, _, rest = token.partition(".")
        key_id, _, body = rest.partition(".")
        if prefix != PREFIX or not body:
            raise SealBroken(f"{column}: not a sealed value")
        if key_id != self.key_id:
            raise SealBroken(f"{column}: sealed with another key ({key_id}), not {self.key_id}")
        try:
            raw = _b64decode(body)
            if _b64encode(raw) != body:  # spare bits of the last character: still a change
                raise ValueError("not canonical base64")
            return self._aead.decrypt(raw[:12], raw[12:], column.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
            raise SealBroken(f"{column}: a sealed value does not open (changed?)") from None

    def seal_bytes(self, data: bytes, column: str) -> bytes:
        """Bytes sealed as text is, without base64 (an uploaded document, up to 10 MB)."""
        nonce = secrets.token_bytes(12)
        head = f"{PREFIX}.{self.key_id}.".encode()
        return head + nonce + self._aead.encrypt(nonce, data, column.encode())

    def open_bytes(self, sealed: bytes, column: str) -> bytes:
        head = f"{PREFIX}.{self.key_id}.".encode()
        if not sealed.startswith(head):
            raise SealBroken(f"{column}: not sealed with this key")
        body = sealed[len(head) :]
        try:
            return self._aead.decrypt(body[:12], body[12:], column.encode())
        except (InvalidTag, ValueError):
            raise SealBroken(f"{column}: a sealed value does not open (changed?)") from None

    def lookup_hash(self, value: str) -> str:
        """The same value always gives the same hash; without the key it cannot be guessed."""
        return hmac.new(self._lookup, value.encode(), "sha256").hexdigest()

    def access_code_hash(self, code: str) -> str:
        """An applicant's access code as stored: keyed, so a copy of the database cannot be
        searched for a code (the codes are random, 160 bits: no guessing either)."""
        return hmac.new(self._lookup, b"access code|" + code.encode(), "sha256").hexdigest()

    def tag(self, purpose: str, data: bytes) -> bytes:
        """A short keyed tag that makes ``data`` tamper-evident (a list cursor)."""
        return hmac.new(self._lookup, purpose.encode() + b"|" + data, "sha256").digest()[:12]

    def body_hash(self, body: bytes) -> str:
        """A request body's hash, to tell a client's retry from a different body. Keyed: a body
        names a person, and a plain hash of it would confirm a guess of its ID number."""
        return hmac.new(self._lookup, b"request body|" + body, "sha256").hexdigest()


def key_id_of(token: str) -> str | None:
    prefix, _, rest = token.partition(".")
    return rest.partition(".")[0] if prefix == PREFIX else None


def resolve_key(configured: str | None, environment: str, dev_file: Path = DEV_KEY_FILE) -> DataKey:
    """The configured key; in development without one, a key kept in ``./var/``.

    Production refuses to run without a configured key: a generated key would sit beside the
    data it protects, and losing it would lose every sealed value.
    """
    if configured:
        return DataKey(configured)
    if environment == "production":
        raise DataKeyError("MIAOPI_DATA_KEY is required when MIAOPI_ENVIRONMENT=production")
    key, made = kept_in(dev_file, generate_key)
    if made:
        log.warning(
            "generated a development data key in %s; set MIAOPI_DATA_KEY in production", dev_file
        )
    return DataKey(key)


_KEYS: WeakKeyDictionary[Dialect, DataKey] = WeakKeyDictionary()


def bind_key(engine: Engine, key: DataKey) -> None:
    _KEYS[engine.dialect] = key


def check_key(engine: Engine, key: DataKey) -> None:
    """Refuse a key that is not the one the database's personal data was sealed with."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("cases"):  # not migrated yet: nothing sealed
            return
        token = conn.execute(
            text("SELECT applicant_name FROM cases ORDER BY seq DESC LIMIT 1")
        ).scalar()
    if token is not None and key_id_of(token) != key.key_id:
        raise DataKeyError(
            f"MIAOPI_DATA_KEY (key id {key.key_id}) is not the key this database's personal "
            f"data was sealed with (key id {key_id_of(token)})"
        )


def bound_key(engine: Engine) -> DataKey | None:
    return _KEYS.get(engine.dialect)


def key_of(dialect: Dialect) -> DataKey:
    try:
        return _KEYS[dialect]
    except KeyError:
        raise DataKeyError("this database engine has no data key bound") from None


class JsonText(str):
    """A document's JSON text, made by ``json_text`` already: stored as it is.

    A case's documents are encoded once, for storing them and for the ledger, which hashes the
    text that is stored (ledger.py, format 3).
    """

    __slots__ = ()


def json_text(value: Any) -> str:
    """The JSON form a document is stored in, sealed or not (migration 0005 seals old rows so).

    pydantic-core's encoder: the same JSON as the json module's, but for how some floats are
    spelled (``1e-7``, not ``1e-07``), in a fifth of the time (a decision's 4 kB, 38 → 8 µs).
    A ``JsonText`` is that text already. Every JSON column and sealed document is written
    through here (the engines' ``json_serializer``).
    """
    if type(value) is JsonText:
        return value
    return to_json(value).decode()


class SealedText(TypeDecorator[Any]):
    """Text sealed with the engine's data key; ``column`` is authenticated with the value."""

    impl = Text
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column

    def encode(self, value: Any) -> str:
        return str(value)

    def decode(self, text: str) -> Any:
        return text

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else key_of(dialect).seal(self.encode(value), self.column)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else self.decode(self.opened(value, dialect))

    def opened(self, value: str, dialect: Dialect) -> str:
        """The stored value opened, not yet decoded: a document's JSON text as it was stored."""
        return key_of(dialect).open(value, self.column)


class SealedJSON(SealedText):
    """A JSON document sealed whole (it holds names and ID numbers among other things)."""

    cache_ok = True

    def encode(self, value: Any) -> str:
        return json_text(value)

    def decode(self, text: str) -> Any:
        return json.loads(text)


class SealedBytes(TypeDecorator[bytes]):
    """Binary content sealed with the engine's data key (an uploaded document)."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column

    def process_bind_param(self, value: bytes | None, dialect: Dialect) -> bytes | None:
        return None if value is None else key_of(dialect).seal_bytes(value, self.column)

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> bytes | None:
        return None if value is None else key_of(dialect).open_bytes(bytes(value), self.column)
