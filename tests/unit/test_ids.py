"""Record ids: unguessable, and the same in every export as in the API."""

from __future__ import annotations

from miaopi.api.spreadsheet import cell
from miaopi.records.paging import new_id


def test_ids_survive_the_csv_export_unquoted() -> None:
    # With URL-safe base64, one id in 64 began with "-" and came out of the CSV as "'-…".
    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(cell(i) == i for i in ids)
    assert all(len(i) == 32 for i in ids)  # 128 random bits
