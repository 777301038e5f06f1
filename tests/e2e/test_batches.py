"""Graduate season in bulk: a batch of applications (JSON or CSV), decided in the background,
each item exactly once, with progress, per-item results and a ``batch.completed`` event."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from miaopi.bootstrap import Container
from miaopi.records.tables import cases
from tests.conftest import EMPLOYER, application, graduate

pytestmark = pytest.mark.anyio

Keys = Callable[..., dict[str, str]]
COLUMNS = ("item_key,business_type,applicant_name,applicant_id_number,employer_uscc,diploma_no,"
           "commitment_version,commitment_accepted,consent_data_query")  # fmt: skip


def _item(key: str, n: int, **changes: Any) -> dict[str, Any]:
    return {"item_key": key, **application(**{**graduate(n), **changes})}


def _csv_row(key: str, n: int, id_number: str | None = None) -> str:
    g = graduate(n)
    return ",".join([key, "graduate", g["name"], id_number or g["id_number"], EMPLOYER,
                     g["diploma_no"], "2026-01", "TRUE", "TRUE"])  # fmt: skip


async def _finish(container: Container) -> None:
    for _ in range(500):
        if not await container.batches.run_once():
            return
    raise AssertionError("the batch did not finish")


def _cases(container: Container) -> int:
    with container.database.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(cases)).scalar_one())


async def test_a_json_batch_is_decided_item_by_item_with_a_result_for_each(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    hr = make_key()
    bad_id = graduate(3)["id_number"][:-1] + ("0" if graduate(3)["id_number"][-1] != "0" else "1")
    items = [_item("a", 0), _item("b", 1), _item("c", 2), _item("d", 3, id_number=bad_id),
             _item("a", 4)]  # fmt: skip
    sent = await api.post("/v1/application-batches", json={"items": items}, headers=hr)
    assert sent.status_code == 202, sent.text
    batch = sent.json()
    assert (batch["status"], batch["total"], batch["done_count"]) == ("queued", 5, 2)
    url = f"/v1/application-batches/{batch['batch_id']}"
    assert sent.headers["location"] == url

    await _finish(container)
    done = (await api.get(url, headers=hr)).json()
    assert (done["status"], done["done_count"]) == ("done", 5)
    assert done["counts"] == {"approved": 3, "rejected": 0, "referred": 0, "invalid": 2}
    results = (await api.get(f"{url}/results", headers=hr)).json()["items"]
    assert [r["item_key"] for r in results] == ["a", "b", "c", "d", "a"]
    assert all(r["case_id"] for r in results[:3])
    assert results[3]["errors"][0]["loc"] == ["applicant", "id_number"]
    assert results[4]["errors"] == [{"loc": ["item_key"], "msg": "given before in this batch"}]
    case = (await api.get(f"/v1/applications/{results[0]['case_id']}", headers=hr)).json()
    assert case["status"] == "approved"

    feed = (await api.get("/v1/events", headers=hr)).json()["items"]
    [completed] = [e for e in feed if e["type"] == "batch.completed"]
    assert completed["data"] == {"batch_id": batch["batch_id"], "counts": done["counts"]}
    assert (await api.get(url, headers=make_key("channel"))).status_code == 404


async def test_an_excel_csv_upload_is_read_and_its_results_come_back_as_csv(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    hr = make_key()
    rows = [COLUMNS, _csv_row("=HYPERLINK(1)", 10), _csv_row("row-3", 11, "42010220020315"),
            _csv_row("row-4", 12), ""]  # fmt: skip
    excel = ("\ufeff" + "\r\n".join(rows)).encode()  # CSV UTF-8, as Excel saves it
    sent = await api.post(
        "/v1/application-batches", content=excel, headers={**hr, "Content-Type": "text/csv"}
    )
    assert sent.status_code == 202, sent.text
    url = f"/v1/application-batches/{sent.json()['batch_id']}"
    await _finish(container)
    answer = await api.get(f"{url}/results", headers={**hr, "Accept": "text/csv"})
    assert answer.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert [(r["row"], r["outcome"]) for r in table] == [
        ("2", "approved"), ("3", "invalid"), ("4", "approved"),
    ]  # fmt: skip
    assert table[0]["item_key"] == "'=HYPERLINK(1)"  # a formula-like cell is quoted
    assert table[1]["errors"].startswith("applicant_id_number: ")


async def test_a_batch_sent_again_with_its_key_is_the_same_batch(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    hr = make_key()
    body = {"items": [_item("x", 20), _item("y", 21)]}
    keyed = {**hr, "Idempotency-Key": "season-2026-1"}
    first = (await api.post("/v1/application-batches", json=body, headers=keyed)).json()
    again = (await api.post("/v1/application-batches", json=body, headers=keyed)).json()
    assert again["batch_id"] == first["batch_id"]
    other = {"items": [_item("x", 22)]}
    reused = await api.post("/v1/application-batches", json=other, headers=keyed)
    assert reused.status_code == 422
    await _finish(container)
    assert _cases(container) == 2


async def test_an_item_whose_case_was_recorded_before_a_crash_is_not_decided_twice(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    hr = make_key()
    sent = await api.post(
        "/v1/application-batches", json={"items": [_item("only", 30)]}, headers=hr
    )
    batch_id = sent.json()["batch_id"]
    # A worker decided the item and recorded its case, then died before marking the item:
    # the case is there under the item's own key.
    recorded = await api.post(
        "/v1/applications", json=application(**graduate(30)),
        headers={**hr, "Idempotency-Key": f"batch:{batch_id}:0"},
    )  # fmt: skip
    assert recorded.status_code == 201
    await _finish(container)
    [result] = (await api.get(f"/v1/application-batches/{batch_id}/results", headers=hr)).json()[
        "items"
    ]
    assert result["case_id"] == recorded.json()["case_id"]
    assert _cases(container) == 1


async def test_a_batch_that_is_not_one_is_refused_whole(
    api: httpx.AsyncClient, make_key: Keys
) -> None:
    hr = make_key()
    too_many = {"items": [_item(str(i), i % 200) for i in range(1001)]}
    refused = await api.post("/v1/application-batches", json=too_many, headers=hr)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "items"]
    xml = await api.post(
        "/v1/application-batches", content=b"<items/>",
        headers={**hr, "Content-Type": "application/xml"},
    )  # fmt: skip
    assert xml.status_code == 415
    gbk = await api.post(
        "/v1/application-batches", content=COLUMNS.encode() + "\n张三".encode("gbk"),
        headers={**hr, "Content-Type": "text/csv"},
    )  # fmt: skip
    assert gbk.status_code == 422
    no_columns = await api.post(
        "/v1/application-batches", content=b"name,id\nx,y\n",
        headers={**hr, "Content-Type": "text/csv"},
    )  # fmt: skip
    assert no_columns.json()["errors"][0]["loc"] == ["body", "header"]


async def test_a_thousand_items_all_get_a_result(
    api: httpx.AsyncClient, make_key: Keys, container: Container
) -> None:
    hr = make_key()
    items = [_item(f"g{i:04d}", i % 240) for i in range(1000)]
    sent = await api.post("/v1/application-batches", json={"items": items}, headers=hr)
    assert sent.status_code == 202, sent.text
    container.batches.at_once = 32
    await _finish(container)
    url = f"/v1/application-batches/{sent.json()['batch_id']}"
    done = (await api.get(url, headers=hr)).json()
    assert (done["status"], done["done_count"]) == ("done", 1000)
    # 240 people: each approved once, then referred as holding a live approval (policy §5).
    assert done["counts"] == {"approved": 240, "rejected": 0, "referred": 760, "invalid": 0}
    results = (await api.get(f"{url}/results", headers=hr)).json()["items"]
    assert len({r["case_id"] for r in results}) == 1000
