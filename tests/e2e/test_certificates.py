"""Approval certificates (policy §11): signed once, verified by anyone with the published keys
and the signed revocation list, online or offline, and by a JOSE library miaopi does not use."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pypdfium2 as pdfium
import pytest
import zxingcpp

from miaopi.bootstrap import Container, bootstrap
from miaopi.certificates.signing import generate_signing_key
from miaopi.settings import Settings
from tests.conftest import Clock, application

pytestmark = pytest.mark.anyio

Keys = Callable[..., dict[str, str]]
FUTIAN = "91440304MA5H3T8P2L"  # risk class C: every approval is drawn for a spot check
LI_MING = {"id_number": "420102200203151232", "name": "李明", "diploma_no": "104861202602000123"}
FINDINGS = {"completeness": "ok", "consistency": "issue", "compliance": "issue", "notes": "n"}


async def _approved(api: httpx.AsyncClient, hr: dict[str, str]) -> dict[str, Any]:
    answer = await api.post("/v1/applications", json=application(uscc=FUTIAN, **LI_MING),
                            headers=hr)  # fmt: skip
    assert answer.json()["status"] == "approved", answer.text
    return answer.json()


@dataclass
class Page:
    text: str
    qr_codes: list[str]
    size_mm: tuple[int, int]


def _read_pdf(content: bytes) -> Page:
    """The PDF as a reader meets it: PDFium renders its one page to pixels, zxing-cpp scans
    the QR codes on them, and the text is what PDFium extracts (so the font's glyphs map back
    to the characters)."""
    document = pdfium.PdfDocument(content)
    assert len(document) == 1
    page = document[0]
    image = page.render(scale=200 / 72).to_pil()  # 200 dpi, as a counter's scanner
    codes = [found.text for found in zxingcpp.read_barcodes(image)]
    width, height = page.get_size()
    return Page(page.get_textpage().get_text_range(), codes,
                (round(width / 72 * 25.4), round(height / 72 * 25.4)))  # fmt: skip


def _offline(tmp_path: Path, token: str, keys: Any, revocations: Any, *extra: str) -> Any:
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    (tmp_path / "revocations.json").write_text(json.dumps(revocations))
    return subprocess.run(
        [sys.executable, "-m", "miaopi.cli", "certificate", "verify", token,
         "--keys", str(tmp_path / "keys.json"),
         "--revocations", str(tmp_path / "revocations.json"), *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def test_a_certificate_verifies_offline_until_its_approval_is_revoked(
    api: httpx.AsyncClient, make_key: Keys, tmp_path: Path
) -> None:
    hr = make_key("employer", uscc=FUTIAN)
    auditor = make_key("auditor", district="440305")  # there when the approval is drawn
    case = await _approved(api, hr)
    answer = await api.get(f"/v1/applications/{case['case_id']}/certificate", headers=hr)
    assert answer.status_code == 200, answer.text
    certificate = answer.json()
    assert certificate["approval_number"] == case["approval_number"]
    again = await api.get(f"/v1/applications/{case['case_id']}/certificate", headers=hr)
    assert again.json()["token"] == certificate["token"]  # signed once
    token = certificate["token"]
    printed = await api.get(f"/v1/applications/{case['case_id']}/certificate",
                            headers={**hr, "Accept": "application/pdf"})  # fmt: skip
    assert printed.status_code == 200, printed.text
    assert printed.headers["content-type"] == "application/pdf"
    page = _read_pdf(printed.content)
    assert page.size_mm == (210, 297)  # A4
    assert page.qr_codes == [token]  # the QR code scans to the token itself
    for words in ("准予人才引进通知", case["approval_number"], "李*", "应届毕业生接收",
                  "深圳市福田金融服务有限公司"):  # fmt: skip
        assert words in page.text, words
    assert "李明" not in page.text
    assert LI_MING["id_number"] not in page.text

    keys = (await api.get("/v1/certificates/keys")).json()  # no account needed
    assert [k["kid"] for k in keys["keys"]] == [certificate["kid"]]
    assert all("d" not in k for k in keys["keys"])  # public halves only

    # A third party with another JOSE library and the JWKS alone.
    public = jwt.PyJWK(keys["keys"][0])
    claims = jwt.decode(token, key=public.key, algorithms=["EdDSA"])
    assert claims["approval_number"] == case["approval_number"]
    assert claims["name"] == "李*"
    assert LI_MING["id_number"] not in json.dumps(claims, ensure_ascii=False)

    revocations = (await api.get("/v1/certificates/revocations")).json()
    done = _offline(tmp_path, token, keys, revocations, "--id-number", LI_MING["id_number"])
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert (verdict["status"], verdict["id_number_matches"]) == ("valid", True)
    wrong = "110101199003077774"
    online = await api.post("/v1/certificates/verify", json={"token": token, "id_number": wrong})
    assert online.json()["status"] == "valid"
    assert online.json()["id_number_matches"] is False

    # Revoked through an audit finding: the list names it; online and offline say so.
    [task] = (await api.get("/v1/audit/tasks", headers=auditor)).json()["items"]
    closed = await api.post(
        f"/v1/audit/tasks/{task['task_id']}/findings",
        json={**FINDINGS, "outcome": "revoked", "reason": "diploma forged"}, headers=auditor,
    )  # fmt: skip
    assert closed.status_code == 200, closed.text
    revocations = (await api.get("/v1/certificates/revocations")).json()
    public_list = jwt.decode(revocations["token"], key=public.key, algorithms=["EdDSA"])
    assert public_list["revoked"] == [case["approval_number"]]
    online = await api.post("/v1/certificates/verify", json={"token": token})
    assert online.json()["status"] == "revoked"
    done = _offline(tmp_path, token, keys, revocations)
    assert done.returncode == 1
    assert json.loads(done.stdout)["status"] == "revoked"
    void = await api.get(f"/v1/applications/{case['case_id']}/certificate",
                         headers={**hr, "Accept": "application/pdf"})  # fmt: skip
    assert void.status_code == 409  # no more paper for a revoked approval


@pytest.mark.parametrize("change", ["payload", "signature", "header"])
async def test_an_altered_or_forged_token_is_invalid(
    api: httpx.AsyncClient, make_key: Keys, change: str
) -> None:
    hr = make_key("employer", uscc=FUTIAN)
    case = await _approved(api, hr)
    token = (await api.get(f"/v1/applications/{case['case_id']}/certificate", headers=hr)).json()[
        "token"
    ]
    header, payload, signature = token.split(".")
    if change == "payload":
        claims = json.loads(jwt.utils.base64url_decode(payload))
        claims["approval_number"] = "4403-2026-999999"
        payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    elif change == "signature":
        signature = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    else:
        header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    altered = f"{header}.{payload}.{signature}"
    forged = await api.post("/v1/certificates/verify", json={"token": altered})
    assert forged.status_code == 200
    assert forged.json() == {"status": "invalid"}


async def test_a_certificate_signed_before_a_key_rotation_still_verifies(
    api: httpx.AsyncClient, make_key: Keys, settings: Settings, clock: Clock
) -> None:
    hr = make_key("employer", uscc=FUTIAN)
    case = await _approved(api, hr)
    old = (await api.get(f"/v1/applications/{case['case_id']}/certificate", headers=hr)).json()
    rotated = bootstrap(
        settings.model_copy(update={"signing_key": generate_signing_key()}), clock=clock
    )
    try:
        keys = await rotated.certificates.jwks()
        assert len(keys["keys"]) == 2
        assert rotated.certificates.key.kid != old["kid"]
        verdict = await rotated.certificates.verify(old["token"], None)
        assert verdict.status == "valid"
    finally:
        await rotated.aclose()


async def test_without_a_font_the_pdf_is_refused_plainly_and_the_token_still_served(
    api: httpx.AsyncClient, make_key: Keys, container: Container, tmp_path: Path
) -> None:
    hr = make_key("employer", uscc=FUTIAN)
    case = await _approved(api, hr)
    container.certificates.font = tmp_path / "no-such-font.ttc"
    url = f"/v1/applications/{case['case_id']}/certificate"
    printed = await api.get(url, headers={**hr, "Accept": "application/pdf"})
    assert printed.status_code == 503
    assert printed.headers["content-type"] == "application/problem+json"
    assert "no-such-font.ttc" in printed.json()["detail"]
    answer = await api.get(url, headers={**hr, "Accept": "application/json"})
    assert answer.status_code == 200
    assert answer.json()["token"]
