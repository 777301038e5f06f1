"""Sealing personal data: what an operator and an attacker with the database file would see."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from miaopi.records.sealing import DataKey, DataKeyError, SealBroken, generate_key, resolve_key

ID = "420102200203151232"


def test_a_sealed_value_opens_with_its_key_and_column_only() -> None:
    key = DataKey(generate_key())
    token = key.seal(ID, "cases.applicant_id_number")
    assert ID not in token
    assert key.seal(ID, "cases.applicant_id_number") != token  # a fresh nonce every time
    assert key.open(token, "cases.applicant_id_number") == ID
    with pytest.raises(SealBroken, match="does not open"):
        key.open(token, "fraud_bars.id_number")  # copied into another column
    with pytest.raises(SealBroken, match="another key"):
        DataKey(generate_key()).open(token, "cases.applicant_id_number")


@pytest.mark.parametrize("position", [3, 12, 20, -1])
def test_any_changed_character_is_detected(position: int) -> None:
    key = DataKey(generate_key())
    token = key.seal("李明", "cases.applicant_name")
    changed = token[:position] + ("B" if token[position] != "B" else "C") + token[position + 1 :]
    if position == -1:
        changed = token[:-1] + ("B" if token[-1] != "B" else "C")
    with pytest.raises(SealBroken):
        key.open(changed, "cases.applicant_name")


def test_lookup_hashes_are_stable_and_keyed() -> None:
    key = generate_key()
    assert DataKey(key).lookup_hash(ID) == DataKey(key).lookup_hash(ID)
    assert DataKey(key).lookup_hash(ID) != DataKey(generate_key()).lookup_hash(ID)
    assert DataKey(key).lookup_hash(ID) != DataKey(key).lookup_hash("430104199608202463")


@pytest.mark.parametrize("bad", ["", "short", "x" * 43 + "!", generate_key()[:-2]])
def test_a_malformed_key_is_refused_with_how_to_make_one(bad: str) -> None:
    with pytest.raises(DataKeyError, match="miaopi keys generate"):
        DataKey(bad)


def test_production_needs_a_configured_key(tmp_path: Path) -> None:
    with pytest.raises(DataKeyError, match="MIAOPI_DATA_KEY is required"):
        resolve_key(None, "production", tmp_path / "var" / "data.key")
    assert not (tmp_path / "var").exists()


def test_development_makes_one_key_and_keeps_it(tmp_path: Path) -> None:
    where = tmp_path / "var" / "data.key"
    first = resolve_key(None, "development", where)
    assert stat.S_IMODE(where.stat().st_mode) == 0o600
    second = resolve_key(None, "development", where)
    assert first.key_id == second.key_id
    token = first.seal(ID, "c")
    assert second.open(token, "c") == ID
    configured = generate_key()
    assert resolve_key(configured, "development", where).key_id == DataKey(configured).key_id
