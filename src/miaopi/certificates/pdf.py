"""The printable certificate: an A4 page in Chinese (with English beneath) and a QR code that
holds the signed token, for the applicant to carry to the police station.

Everything printed comes from the token's own claims, so the paper says exactly what a
verifier's scan will show. fpdf2 writes the PDF and embeds the subset of the font it uses;
segno makes the QR code. The font is a CJK font from the operating system (Debian's
``fonts-wqy-microhei``: one file with Chinese and Latin glyphs), so the wheel stays small and
the glyphs are the distribution's.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import segno
from fpdf import FPDF

FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),
)


class FontMissing(RuntimeError):
    """No CJK font to print with: install Debian's fonts-wqy-microhei or set
    MIAOPI_CERTIFICATE_FONT."""


def find_font(configured: Path | None) -> Path:
    for path in (configured,) if configured is not None else FONT_CANDIDATES:
        if path.is_file():
            return path
    raise FontMissing(
        f"no font at {configured}" if configured is not None
        else "no CJK font installed (Debian package fonts-wqy-microhei)"
    )  # fmt: skip


def _qr_png(token: str) -> io.BytesIO:
    # Level M survives a crease or a smudge; a token of ~1 kB fits in version 25 or so.
    qr = segno.make(token, error="m", boost_error=False)
    out = io.BytesIO()
    qr.save(out, kind="png", scale=4, border=4)
    out.seek(0)
    return out


def _rows(claims: dict[str, Any], title: dict[str, str]) -> list[tuple[str, str, str]]:
    employer = claims.get("employer") or {}
    ruleset = claims.get("ruleset") or {}
    return [
        ("核准编号", "Approval number", str(claims.get("approval_number", ""))),
        ("业务类型", "Business type",
         f"{title.get('zh', '')}  {title.get('en', claims.get('business_type', ''))}"),
        ("姓名", "Name", str(claims.get("name", ""))),
        ("用人单位", "Employer", f"{employer.get('name', '')}  ({employer.get('uscc', '')})"),
        ("核准日期", "Decided on", str(claims.get("decided_on", ""))),
        ("有效期至", "Valid until", str(claims.get("expires_on", ""))),
        ("依据规则", "Rules applied",
         f"{ruleset.get('version', '')} · {str(ruleset.get('fingerprint', ''))[:16]}"),
    ]  # fmt: skip


INSTRUCTIONS_ZH = (
    "请持本通知和本人居民身份证，在有效期内到公安机关办理入户。"
    "民警扫描二维码可离线核验本通知真伪及是否撤销，输入身份证号码可核对是否本人。"
    "二维码不含身份证号码和完整姓名。"
)
INSTRUCTIONS_EN = (
    "Bring this notice and your resident identity card to the police station within its "
    "validity to register your household. The QR code is the signed certificate: it can be "
    "verified offline with the authority's published keys and revocation list, and matched to "
    "the ID number typed from the card. It holds neither the ID number nor the full name."
)


@lru_cache(maxsize=64)
def _render(token: str, claims_json: str, title_zh: str, title_en: str, kid: str,
            issued_at: str, font: str) -> bytes:  # fmt: skip
    claims = json.loads(claims_json)
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_creation_date(datetime.fromisoformat(issued_at))
    pdf.set_title(f"准予人才引进通知 {claims.get('approval_number', '')}")
    pdf.set_lang("zh-CN")
    pdf.add_font("cjk", fname=font)
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    pdf.set_margins(20, 20, 20)
    pdf.set_y(22)
    pdf.set_font("cjk", size=22)
    pdf.cell(w=0, h=11, text="准予人才引进通知", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=11)
    pdf.cell(w=0, h=7, text="Notice of approval for talent introduction", align="C",
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.ln(8)
    for zh, en, value in _rows(claims, {"zh": title_zh, "en": title_en}):
        y = pdf.get_y()
        pdf.set_font("cjk", size=12)
        pdf.set_xy(20, y)
        pdf.cell(w=28, h=7, text=zh)
        pdf.set_font("cjk", size=8)
        pdf.set_xy(20, y + 6)
        pdf.cell(w=28, h=4, text=en)
        pdf.set_font("cjk", size=12)
        pdf.set_xy(52, y)
        pdf.multi_cell(w=138, h=7, text=value, new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(max(pdf.get_y(), y + 11))
    pdf.ln(4)
    pdf.set_font("cjk", size=11)
    pdf.multi_cell(w=170, h=6.5, text=INSTRUCTIONS_ZH, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("cjk", size=9)
    pdf.multi_cell(w=170, h=5, text=INSTRUCTIONS_EN, new_x="LMARGIN", new_y="NEXT")
    # The QR code: 80 mm, with a quiet zone, low on the page where a fold will not cross it.
    pdf.image(_qr_png(token), x=65, y=178, w=80, h=80)
    pdf.set_xy(20, 260)
    pdf.set_font("cjk", size=10)
    pdf.cell(w=170, h=6, text="扫码核验 · Scan to verify", align="C", new_x="LMARGIN",
             new_y="NEXT")  # fmt: skip
    pdf.set_font("cjk", size=7)
    pdf.cell(w=170, h=5, text=f"key {kid} · issued {issued_at}", align="C")
    return bytes(pdf.output())


def render(
    token: str, claims: dict[str, Any], title: dict[str, str], kid: str, issued_at: datetime,
    font: Path,
) -> bytes:  # fmt: skip
    """The certificate as PDF bytes. The same token always gives the same bytes, and the last
    few are kept: fpdf2 reads the font file anew for each document, which takes longer than
    the rest of the page."""
    return _render(
        token, json.dumps(claims, sort_keys=True, ensure_ascii=False), title.get("zh", ""),
        title.get("en", ""), kid, issued_at.isoformat(timespec="seconds"), str(font),
    )  # fmt: skip
