"""A batch's items, from JSON or from a CSV upload, each checked as an application alone.

CSV is UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8" writes one), comma
separated, a header row naming the columns below; rows are numbered as a spreadsheet shows
them (the header is row 1). A row or item that is not a valid application is kept as an
``invalid`` result naming its row and field: the batch goes on.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from pydantic import ValidationError

from miaopi.api.errors import invalid
from miaopi.api.routes.applications import application_of
from miaopi.api.schemas import ApplicationIn
from miaopi.eligibility.model import canonical_json
from miaopi.records.batches import Item
from miaopi.usecases.batches import MAX_ITEMS, stored_item

CSV_COLUMNS = (
    "item_key", "business_type", "applicant_name", "applicant_id_number", "employer_uscc",
    "diploma_no", "title_certificate_no", "certification_no", "commitment_version",
    "commitment_accepted", "consent_data_query",
)  # fmt: skip
_REQUIRED = (
    "item_key", "business_type", "applicant_name", "applicant_id_number", "employer_uscc",
    "commitment_version", "commitment_accepted", "consent_data_query",
)  # fmt: skip
# Where each field of an application is in a CSV row.
_COLUMN_OF = {
    ("applicant", "name"): "applicant_name",
    ("applicant", "id_number"): "applicant_id_number",
    ("employer", "uscc"): "employer_uscc",
    ("commitment", "version"): "commitment_version",
    ("commitment", "accepted"): "commitment_accepted",
    ("consent", "data_query"): "consent_data_query",
}


def _item(row: int, key: Any, fields: dict[str, Any], where: list[Any]) -> Item:
    if not isinstance(key, str) or not 1 <= len(key.strip()) <= 100:
        return Item(row, str(key)[:100] if key else "", None,
                    [{"loc": [*where, "item_key"], "msg": "1 to 100 characters"}])  # fmt: skip
    try:
        body = ApplicationIn.model_validate(fields)
    except ValidationError as exc:
        errors = [{"loc": [*where, *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        return Item(row, key.strip(), None, errors)
    canonical = canonical_json(body.model_dump(mode="json"))
    return stored_item(row, key.strip(), application_of(body), canonical)


def _unique(items: list[Item]) -> list[Item]:
    """An item_key given twice: the later item is invalid (each item is decided once)."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item.body is not None and item.item_key in seen:
            item = Item(item.row, item.item_key, None,
                        [{"loc": ["item_key"], "msg": "given before in this batch"}])  # fmt: skip
        seen.add(item.item_key)
        out.append(item)
    return out


def from_json(data: Any) -> list[Item]:
    if not isinstance(data, dict) or set(data) != {"items"} or not isinstance(data["items"], list):
        raise invalid(["body"], 'a batch is {"items": [...]}')
    raw = data["items"]
    if not 1 <= len(raw) <= MAX_ITEMS:
        raise invalid(["body", "items"], f"1 to {MAX_ITEMS} items")
    items = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            items.append(Item(i, "", None, [{"loc": [], "msg": "an item is an object"}]))
            continue
        fields = {k: v for k, v in entry.items() if k != "item_key"}
        items.append(_item(i, entry.get("item_key"), fields, []))
    return _unique(items)


def from_csv(raw: bytes) -> list[Item]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid(["body"], "CSV must be UTF-8 (Excel: save as CSV UTF-8)") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise invalid(["body", "header"], f"missing columns: {', '.join(missing)}")
    reader.fieldnames = header
    items: list[Item] = []
    for number, row in enumerate(reader, start=2):
        if len(items) == MAX_ITEMS:
            raise invalid(["body"], f"at most {MAX_ITEMS} rows")
        cells = {k: (v or "").strip() for k, v in row.items() if k in CSV_COLUMNS}
        if not any(cells.values()):
            continue  # a blank line, as spreadsheets leave at the end
        items.append(_row(number, cells))
    if not items:
        raise invalid(["body"], "no rows")
    return _unique(items)


def _row(number: int, cells: dict[str, str]) -> Item:
    def flag(column: str) -> Any:
        value = cells.get(column, "")
        return True if value.lower() == "true" else value  # anything else: invalid

    fields = {
        "business_type": cells.get("business_type"),
        "applicant": {"name": cells.get("applicant_name"),
                      "id_number": cells.get("applicant_id_number")},
        "employer": {"uscc": cells.get("employer_uscc")},
        "claims": {c: cells[c] for c in ("diploma_no", "title_certificate_no",
                                         "certification_no") if cells.get(c)},
        "commitment": {"version": cells.get("commitment_version"),
                       "accepted": flag("commitment_accepted")},
        "consent": {"data_query": flag("consent_data_query")},
    }  # fmt: skip
    item = _item(number, cells.get("item_key"), fields, [])
    if item.errors:
        item = Item(item.row, item.item_key, None, [
            {"loc": [_column(e["loc"])], "msg": e["msg"]} for e in item.errors
        ])  # fmt: skip
    return item


def _column(loc: list[Any]) -> str:
    parts = tuple(str(p) for p in loc)
    if parts[:1] == ("claims",) and len(parts) > 1:
        return parts[1]
    pair = (parts[0], parts[1]) if len(parts) > 1 else None
    return _COLUMN_OF.get(pair, parts[0]) if pair else (parts[0] if parts else "row")
