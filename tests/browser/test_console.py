"""The console as its people use it, in Chromium: each role signs in and does its work, and
nobody reaches what their role or their session does not allow."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from miaopi.records.clients import create_client
from tests.browser.conftest import Console, screenshot
from tests.conftest import application, load_script

FUTIAN = "91440304MA5H3T8P2L"  # district 440304, risk class C: every approval is spot-checked
HE_WEI = {"id_number": "320106200102141117", "name": "何伟", "diploma_no": "102841202602000333"}
LI_MING = {"id_number": "420102200203151232", "name": "李明", "diploma_no": "104861202602000123"}
XU_JING = {"id_number": "210102200010102267", "name": "许静", "diploma_no": "101411202602000444"}
JIANG_XIN = {"id_number": "360102200202288820", "name": "蒋欣", "diploma_no": "104031202602000135"}
DENG_CHAO = {"id_number": "530102200103036646", "name": "邓超", "diploma_no": "106731202602000888"}
WANG_FANG = {"id_number": "430104199608202463", "name": "王芳", "diploma_no": "105331202603000456"}
verify_draw = load_script("scripts/verify_draw.py")
HOMES = {"officer": "/console/reviews", "auditor": "/console/tasks",
         "registrar": "/console/registrar", "admin": "/console/dashboard"}  # fmt: skip


@pytest.fixture
def page(browser: Any, console: Console) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page: Any, console: Console, role: str) -> None:
    page.goto(f"{console.url}/console/sign-in")
    page.fill("#api_key", console.keys[role])
    page.click("button[type=submit]")


def test_each_role_signs_in_to_its_own_page_in_chinese_and_english(
    page: Any, console: Console
) -> None:
    for role, home in HOMES.items():
        sign_in(page, console, role)
        assert page.url == f"{console.url}{home}", role
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        screenshot(page, f"{role}-zh")
        page.click("text=English")
        assert page.locator("html").get_attribute("lang") == "en"
        screenshot(page, f"{role}-en")
        page.click("text=中文")
        page.click("text=退出")  # sign out: the session ends
        assert page.url.endswith("/console/sign-in")
        page.goto(f"{console.url}{home}")
        assert page.url.endswith("/console/sign-in"), "a signed-out session still opened a page"


def test_an_employer_key_is_refused(page: Any, console: Console) -> None:
    sign_in(page, console, "employer")
    assert "用人单位和渠道的密钥不能登录工作台" in page.content()
    page.goto(f"{console.url}/console/reviews")
    assert page.url.endswith("/console/sign-in")


def test_a_wrong_key_is_said_plainly(page: Any, console: Console) -> None:
    page.goto(f"{console.url}/console/sign-in")
    page.fill("#api_key", "mp_nothing_at_all")
    response = page.expect_response(lambda r: r.url.endswith("/console/sign-in"))
    with response as answered:
        page.click("button[type=submit]")
    assert answered.value.status == 401
    assert "密钥无效或已被撤销" in page.content()


def test_an_officer_works_a_referred_case_to_approval(page: Any, console: Console) -> None:
    case = console.api("POST", "/v1/applications", json=application(uscc=FUTIAN, **HE_WEI)).json()
    assert case["status"] == "referred"
    closed = console.api("GET", "/v1/stats", role="admin").json()["totals"]["reviews"]["closed"]
    sign_in(page, console, "officer")
    page.click("a[href^='/console/reviews/']")
    assert "no_criminal_record" in page.content()
    assert HE_WEI["id_number"] not in page.content()  # masked for an officer, as in the API
    page.click("text=领取审核")
    screenshot(page, "officer-review")
    page.select_option("#result-no_criminal_record", "pass")
    page.fill("#note-no_criminal_record", "无犯罪记录证明已当面核验")
    page.check("input[name=outcome][value=approved]")
    page.click("text=提交决定")
    assert "已核准" in page.content()
    read = console.api("GET", f"/v1/applications/{case['case_id']}").json()
    assert read["status"] == "approved"
    sign_in(page, console, "admin")  # the authority sees the review closed, and its time
    assert int(page.inner_text("#fig-reviews-closed")) == closed + 1
    assert page.inner_text("#fig-review-time").endswith("秒")  # the test's clock stands still


def _scan_png() -> bytes:
    """A real image, as a phone's scan would be (Pillow comes with fpdf2)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (420, 300), (250, 250, 240)).save(out, format="PNG")
    return out.getvalue()


def _scan_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text="Court certificate: judgment fully performed")
    return bytes(pdf.output())


def test_an_officer_asks_once_for_documents_previews_them_and_decides_on_one(
    browser: Any, page: Any, console: Console
) -> None:
    case = console.api("POST", "/v1/applications",
                       json=application(uscc=FUTIAN, **XU_JING)).json()  # fmt: skip
    assert case["status"] == "referred"
    queue = console.api("GET", "/v1/reviews", role="admin").json()["items"]
    [review] = [r for r in queue if r["case_id"] == case["case_id"]]
    sign_in(page, console, "officer")
    page.goto(f"{console.url}/console/reviews/{review['review_id']}")
    assert "#need-good_credit" not in page.content()  # the notice is the holder's to give
    page.click("text=领取审核")
    page.click("text=发出告知")  # nothing named: refused, nothing sent
    assert "请至少列明一项材料" in page.content()
    page.fill("#need-good_credit", "法院出具的执行完毕证明")
    page.click("text=发出告知")
    assert "待补材料" in page.content()
    assert "待申报单位补交" in page.content()
    assert page.locator("#need-good_credit").count() == 0  # one notice only

    for item, content in ((0, _scan_png()), (0, _scan_pdf())):
        uploaded = console.api(
            "POST",
            f"/v1/applications/{case['case_id']}/documents",
            data={"item": str(item)},
            files={"file": ("scan", content, "application/octet-stream")},
        )
        assert uploaded.status_code == 201, uploaded.text  # fmt: skip
    page.reload()
    assert "已收到" in page.content()
    image = page.locator("figure.document img")
    image.scroll_into_view_if_needed()
    expect(image).to_have_js_property("naturalWidth", 420)  # drawn in the page, once loaded
    frame_url = page.locator("figure.document iframe").get_attribute("src")
    shown = page.request.get(f"{console.url}{frame_url}")
    assert shown.status == 200
    assert shown.headers["content-type"] == "application/pdf"
    assert shown.headers["content-disposition"] == "inline"
    assert "frame-ancestors 'self'" in shown.headers["content-security-policy"]
    page.locator("figure.document iframe").element_handle().content_frame().wait_for_load_state()
    screenshot(page, "officer-documents")

    # Another officer, who does not hold the review, learns nothing of its documents.
    _, stranger_key = create_client(console.container.database.engine, "officer",
                                    "另一位窗口人员", district="440306")  # fmt: skip
    other = browser.new_context().new_page()
    other.goto(f"{console.url}/console/sign-in")
    other.fill("#api_key", stranger_key)
    other.click("button[type=submit]")
    assert other.request.get(f"{console.url}{frame_url}").status == 404
    other.goto(f"{console.url}/console/reviews/{review['review_id']}")
    assert other.locator("figure.document").count() == 0
    other.context.close()

    document_id = frame_url.rsplit("/", 1)[1]
    # A decision sent without an outcome (the form requires one; a hand-made post may not).
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    undecided = page.request.post(f"{console.url}/console/reviews/{review['review_id']}/decision",
                                  form={"csrf": csrf, "result:good_credit": "pass"})  # fmt: skip
    assert undecided.status == 422
    assert "请选择核准或不予核准" in undecided.text()
    hearsay = page.request.post(f"{console.url}/console/reviews/{review['review_id']}/decision",
                                form={"csrf": csrf, "outcome": "approved",
                                      "result:good_credit": "pass", "basis:good_credit": "hearsay",
                                      "note:good_credit": "听说已还清"})  # fmt: skip
    assert hearsay.status == 422  # a basis the API does not take, refused as the API refuses it
    assert "以下字段无效" in hearsay.text()
    assert "resolutions.0.basis" in hearsay.text()
    page.select_option("#result-good_credit", "pass")
    page.select_option("#basis-good_credit", "document")
    page.select_option("#document-good_credit", document_id)
    page.check("input[name=outcome][value=approved]")
    page.click("text=提交决定")
    assert "已核准" in page.content()
    decided = console.api("GET", f"/v1/reviews/{review['review_id']}", role="admin").json()
    [resolution] = [r for r in decided["resolutions"] if r["criterion"] == "good_credit"]
    assert resolution["basis"] == "document"
    assert resolution["document_id"] == document_id


def test_an_auditor_revokes_and_the_dashboard_counts_it(
    browser: Any, page: Any, console: Console
) -> None:
    case = console.api("POST", "/v1/applications",
                       json=application(uscc=FUTIAN, **LI_MING)).json()  # fmt: skip
    assert case["status"] == "approved"
    admin = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    sign_in(admin, console, "admin")
    before = int(admin.inner_text("#fig-revocations"))

    sign_in(page, console, "auditor")
    page.click("a[href^='/console/tasks/']")
    assert LI_MING["id_number"] in page.content()  # the task's case, whole, for its auditor
    # Findings sent by hand without an outcome, or with a check the API does not know.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    action = page.locator("form[action$='/findings']").get_attribute("action")
    for sent in ({"completeness": "ok", "consistency": "ok", "compliance": "ok"},
                 {"completeness": "fine", "consistency": "ok", "compliance": "ok",
                  "outcome": "confirmed"}):  # fmt: skip
        refused = page.request.post(f"{console.url}{action}", form={"csrf": csrf, **sent})
        assert refused.status == 422
        assert "请完成每项检查并给出结论" in refused.text()
    for check in ("completeness", "consistency", "compliance"):
        page.check(f"input[name={check}][value=issue]")
    page.check("input[name=outcome][value=revoked]")
    page.fill("#reason", "学历证书系伪造")
    page.click("text=办结任务")
    assert "确认撤销核准" in page.content()  # the confirmation step
    screenshot(page, "auditor-confirm")
    page.check("input[name=confirmed]")
    page.click("button.danger")
    assert "已撤销" in page.content()

    admin.reload()
    assert int(admin.inner_text("#fig-revocations")) == before + 1
    screenshot(admin, "admin-dashboard")


def test_an_auditor_reads_the_months_draw_and_it_verifies_once_the_month_has_ended(
    page: Any, console: Console
) -> None:
    body = application(uscc=FUTIAN, **JIANG_XIN)
    case = console.api("POST", "/v1/applications", json=body).json()
    assert case["status"] == "approved"  # FUTIAN is of risk class C: drawn at rate 1
    sign_in(page, console, "auditor")
    page.click("nav >> text=抽查摇号")
    assert int(page.inner_text("#draw-drawn")) >= 1
    assert case["case_id"] in page.content()
    assert "当月结束前保密" in page.content()  # the seed is secret while the month runs
    assert page.locator("#draw-seed").count() == 0
    commitment = page.inner_text("#draw-commitment")  # kept while the month runs

    clock = console.container.clock
    kept = clock.now  # type: ignore[attr-defined]
    clock.now = kept + timedelta(days=40)  # type: ignore[attr-defined]
    try:
        sign_in(page, console, "auditor")  # forty days on, the session has long ended
        page.goto(f"{console.url}/console/draws")
        page.fill("#period", "2026-11")
        page.click("form.filters button")
        assert "全部" in page.inner_text("#draw-verdict")
        screenshot(page, "auditor-draw")
        with page.expect_download() as downloading:
            page.click("text=摇号结果 JSON")
        published = json.loads(Path(downloading.value.path()).read_text())
        assert published["seed"] == page.inner_text("#draw-seed")
        selection, problems = verify_draw.verify(published, commitment)
        assert problems == []
        assert case["case_id"] in selection
        with page.expect_download() as downloading:
            page.click("text=抽查样本 CSV")
        samples = Path(downloading.value.path()).read_text(encoding="utf-8-sig")
        assert case["case_id"] in samples  # the auditor's own spot checks
    finally:
        clock.now = kept  # type: ignore[attr-defined]
    page.goto(f"{console.url}/console/draws?period=2026-13")
    assert "格式 YYYY-MM" in page.content()


def test_a_registrar_records_a_registration_from_a_token(page: Any, console: Console) -> None:
    case = console.api("POST", "/v1/applications", json=application(**WANG_FANG)).json()
    token = console.api("GET", f"/v1/applications/{case['case_id']}/certificate").json()["token"]
    sign_in(page, console, "registrar")
    page.fill("#token", token)
    page.fill("#verify-id", WANG_FANG["id_number"])
    page.click("button:text-is('核验')")
    assert "身份证号码与证书一致" in page.content()
    assert page.input_value("#approval_number") == case["approval_number"]
    page.fill("#registered_on", "2026-11-23")
    # Sent by hand past the page's own limits: refused as the API refuses it, the field named.
    csrf = page.locator("form[action$='/registrations'] input[name=csrf]").get_attribute("value")
    refused = page.request.post(f"{console.url}/console/registrar/registrations", form={
        "csrf": csrf, "approval_number": case["approval_number"],
        "id_number": WANG_FANG["id_number"], "registered_on": "2026-11-23",
        "police_station": "南山" * 60})  # fmt: skip
    assert refused.status == 422
    assert "以下字段无效： 派出所" in refused.text()
    page.fill("#police_station", "南山派出所")
    page.click("button:text-is('登记')")
    assert "已登记落户" in page.content()
    screenshot(page, "registrar")
    read = console.api("GET", f"/v1/applications/{case['case_id']}").json()
    assert "household_registered" in [s["stage"] for s in read["stages"]]


def test_the_dashboard_shows_a_registry_that_fails(page: Any, console: Console) -> None:
    sign_in(page, console, "admin")
    assert page.inner_text("#errors-police") in ("—", "0.0 %")
    # The police registry answers 500 for him, on the first try and the retry.
    case = console.api("POST", "/v1/applications", json=application(**DENG_CHAO)).json()
    assert case["status"] == "referred"
    page.reload()
    assert page.inner_text("#errors-police") not in ("—", "0.0 %")
    assert page.inner_text("#errors-education") == "0.0 %"  # it answered
    assert page.inner_text("#breaker-police") == "正常"  # one failure does not open it


def test_a_session_of_one_role_cannot_open_another_roles_page(page: Any, console: Console) -> None:
    sign_in(page, console, "registrar")
    for other in ("/console/reviews", "/console/tasks", "/console/dashboard", "/console/clients"):
        answered = page.goto(f"{console.url}{other}")
        assert answered.status == 403, other


def test_a_form_posted_without_its_csrf_token_is_refused(page: Any, console: Console) -> None:
    sign_in(page, console, "admin")
    # The session cookie goes along (same origin), the form's token does not.
    refused = page.request.post(f"{console.url}/console/clients",
                                form={"role": "admin", "name": "intruder"})  # fmt: skip
    assert refused.status == 403
    page.goto(f"{console.url}/console/clients")
    assert "intruder" not in page.content()


def test_every_page_has_no_serious_accessibility_violation(browser: Any, console: Console) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    # axe is injected as a script, which the console's policy forbids: only here is it lifted.
    context = browser.new_context(viewport={"width": 1366, "height": 768}, bypass_csp=True)
    page = context.new_page()
    # The work pages of the cases the tests before made: reviews with their documents, tasks.
    reviewed = console.api("GET", "/v1/reviews", role="admin").json()["items"]
    pages = {"admin": ["/console/dashboard", "/console/clients", "/console/rules",
                       "/console/tasks", "/console/reviews", "/console/draws",
                       *(f"/console/reviews/{r['review_id']}" for r in reviewed)],
             "registrar": ["/console/registrar"]}  # fmt: skip
    found = {}
    page.goto(f"{console.url}/console/sign-in")
    found["/console/sign-in"] = axe.run(page).response["violations"]
    for role, paths in pages.items():
        sign_in(page, console, role)
        for path in paths:
            page.goto(f"{console.url}{path}")
            found[path] = axe.run(page).response["violations"]
        page.click("form[action='/console/sign-out'] button")
    serious = {path: [v["id"] for v in found_ if v["impact"] in ("serious", "critical")]
               for path, found_ in found.items()}  # fmt: skip
    assert serious == {path: [] for path in found}
    context.close()


def test_every_page_forbids_scripts_and_framing(page: Any, console: Console) -> None:
    answered = page.goto(f"{console.url}/console/sign-in")
    policy = answered.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script" not in policy  # no script-src: none may run
    assert "frame-ancestors 'none'" in policy
    sign_in(page, console, "admin")
    cookie = next(c for c in page.context.cookies() if c["name"] == "miaopi_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"


@pytest.mark.parametrize("viewport", [(1366, 768), (768, 1024)], ids=["laptop", "tablet"])
def test_pages_fit_a_laptop_and_a_tablet_without_scrolling_sideways(
    browser: Any, console: Console, viewport: tuple[int, int]
) -> None:
    width, height = viewport
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    sign_in(page, console, "admin")
    for path in ("/console/dashboard", "/console/clients", "/console/reviews", "/console/tasks",
                 "/console/draws"):
        page.goto(f"{console.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
    context.close()
