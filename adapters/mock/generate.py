"""A synthetic population for the mock registries, deterministic in its seed.

Persons get valid GB 11643 ID numbers built on real GB/T 2260 county codes (python-stdnum's
table, current codes only) and their birth dates; employers get valid GB 32100 USCCs registered
in Shenzhen's districts (a few elsewhere). Diploma numbers have CHSI's shape: institution code,
school type, graduation year, level code, serial. The mix follows the four business types —
fresh graduates, people in work (diploma and/or title, with social-security history),
returnees with certified foreign degrees, postdocs — with a few percent of credit problems,
criminal records, revoked diplomas and cancelled identities, so every outcome occurs.

The output is JSON (which YAML loaders read too), one person a line, written in a fixed order
from one ``random.Random(seed)``: the same seed and size give the same bytes.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any

from stdnum.cn import ric, uscc

SHENZHEN = {
    "440303": "罗湖区", "440304": "福田区", "440305": "南山区", "440306": "宝安区",
    "440307": "龙岗区", "440308": "盐田区", "440309": "龙华区", "440310": "坪山区",
    "440311": "光明区",
}  # fmt: skip
ELSEWHERE = {"440106": "广州市天河区", "440604": "佛山市禅城区", "441900": "东莞市"}
INSTITUTIONS = {
    "10001": "北京大学", "10003": "清华大学", "10246": "复旦大学", "10248": "上海交通大学",
    "10284": "南京大学", "10335": "浙江大学", "10384": "厦门大学", "10422": "山东大学",
    "10486": "武汉大学", "10487": "华中科技大学", "10533": "中南大学", "10558": "中山大学",
    "10561": "华南理工大学", "10590": "深圳大学", "10610": "四川大学", "10614": "电子科技大学",
    "10698": "西安交通大学", "11078": "广州大学", "14325": "南方科技大学",
    "12608": "深圳职业技术学院",
}  # fmt: skip
LEVEL_CODES = {"junior_college": "01", "bachelor": "02", "master": "03", "doctorate": "04"}
COUNTRIES = {
    "GB": ["University College London", "University of Manchester", "Imperial College London"],
    "US": ["University of Michigan", "Columbia University", "Purdue University"],
    "AU": ["University of Sydney", "University of Melbourne"],
    "JP": ["University of Tokyo", "Kyoto University"],
    "DE": ["TU München", "RWTH Aachen"],
    "SG": ["National University of Singapore"],
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉建波宁浩宇欣怡晨阳雪琳博文轩"
INDUSTRIES = ["智造科技", "数字医疗", "金融服务", "精密制造", "软件", "新能源", "生物科技", "物流"]
TITLES = ["工程师", "高级工程师", "经济师", "会计师", "讲师", "主治医师"]
OFFENCES = ["盗窃罪", "危险驾驶罪", "诈骗罪"]
STATIONS = {"440305": "南方科技大学博士后流动站", "440303": "深圳大学博士后流动站",
            "440304": "深圳市人民医院博士后工作站", "440306": "华为技术博士后工作站"}  # fmt: skip
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z


_SPAN = re.compile(r"^\[(\d{4})?-(\d{4})?\]")


@cache
def _counties() -> tuple[tuple[str, tuple[tuple[int, int], ...]], ...]:
    """County-level codes of GB/T 2260 with the years each was in use (python-stdnum's table)."""
    text = resources.files("stdnum").joinpath("cn/loc.dat").read_text(encoding="utf-8")
    out, province = [], ""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith(" "):
            province = line.split()[0]
            continue
        code, _, rest = line.strip().partition(" ")
        if code.endswith("00"):
            continue  # a province or prefecture, not a county
        spans = []
        for entry in rest.partition("=")[2].strip('"').split(","):
            match = _SPAN.match(entry)
            name = entry[match.end() :] if match else entry
            if name in ("市辖区", "县", "省直辖县级行政区划"):
                continue
            low = int(match[1]) if match and match[1] else 0
            high = int(match[2]) if match and match[2] else 9999
            spans.append((low, high))
        if spans:
            out.append((province + code, tuple(spans)))
    return tuple(out)


@cache
def county_codes(year: int | None = None) -> tuple[str, ...]:
    """The codes in use in ``year`` (an ID number carries its holder's code at birth), or all."""
    return tuple(
        code
        for code, spans in _counties()
        if year is None or any(low <= year <= high for low, high in spans)
    )


class _Builder:
    def __init__(self, seed: int, today: date) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        self.today = today
        self.ids: set[str] = set()
        self.serials: dict[tuple[str, int, str], int] = {}
        self.counter = 0

    def pick(self, weights: dict[str, float]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def day_between(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randrange((end - start).days + 1))

    def name(self) -> str:
        given = "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2, 2))))
        return self.rng.choice(SURNAMES) + given

    def id_number(self, region: str, born: date) -> str:
        while True:
            body = f"{region}{born:%Y%m%d}{self.rng.randrange(1000):03d}"
            number = body + ric.calc_check_digit(body + "0")
            if number not in self.ids:
                self.ids.add(number)
                return number

    def uscc(self, region: str) -> str:
        body = "91" + region + "".join(self.rng.choice(USCC_CHARS) for _ in range(9))
        return body + uscc.calc_check_digit(body + "0")

    def diploma_no(self, institution: str, graduated: date, level: str) -> str:
        key = (institution, graduated.year, level)
        self.serials[key] = self.serials.get(key, 0) + 1
        return f"{institution}1{graduated.year}{LEVEL_CODES[level]}{self.serials[key]:06d}"

    def reference(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:08d}"


def _employers(b: _Builder, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        inside = i % 10 != 9  # one in ten registered outside the city
        region = b.rng.choice(list(SHENZHEN if inside else ELSEWHERE))
        place = f"深圳市{SHENZHEN[region]}" if inside else ELSEWHERE[region]
        out.append(
            {
                "uscc": b.uscc(region),
                "name": f"{place}{b.rng.choice(INDUSTRIES)}{i + 1:05d}有限公司",
                "status": b.pick({"active": 94, "revoked": 4, "cancelled": 2}),
                "region": region,
                "risk_class": b.pick({"A": 20, "B": 60, "C": 15, "D": 5}),
                "severe_dishonesty": b.chance(0.01),
            }
        )
    return out


def _diploma(b: _Builder, level: str, graduated: date, full_time_p: float) -> dict[str, Any]:
    institution = b.rng.choice(list(INSTITUTIONS))
    return {
        "diploma_no": b.diploma_no(institution, graduated, level),
        "level": level,
        "study_mode": "full_time" if b.chance(full_time_p) else "part_time",
        "institution": INSTITUTIONS[institution],
        "graduation_date": graduated.isoformat(),
        "status": "revoked" if b.chance(0.01) else "valid",
    }


_AGE_AT_DEGREE = {"junior_college": (20, 23), "bachelor": (21, 24), "master": (24, 28),
                  "doctorate": (27, 33)}  # fmt: skip


def _born_for(b: _Builder, level: str, graduated: date) -> date:
    low, high = _AGE_AT_DEGREE[level]
    age = b.rng.randint(low, high)
    return b.day_between(
        date(graduated.year - age - 1, graduated.month, 1), date(graduated.year - age, 6, 1)
    )


def _person(b: _Builder, employers: list[dict[str, Any]]) -> dict[str, Any]:
    kind = b.pick({"graduate": 55, "in_service": 25, "overseas_returnee": 12, "postdoc": 8})
    year = b.today.year
    record: dict[str, Any] = {}
    if kind == "graduate":
        level = b.pick({"junior_college": 10, "bachelor": 60, "master": 25, "doctorate": 5})
        graduated = b.pick({f"{year}-06-30": 70, f"{year - 1}-06-30": 20, f"{year - 3}-06-30": 10})
        graduated_on = date.fromisoformat(graduated)
        born = _born_for(b, level, graduated_on)
        record["diplomas"] = [_diploma(b, level, graduated_on, 0.92)]
    elif kind == "in_service":
        level = b.pick({"junior_college": 15, "bachelor": 55, "master": 25, "doctorate": 5})
        graduated_on = date(b.rng.randint(year - 20, year - 2), 6, 30)
        born = _born_for(b, level, graduated_on)
        if b.chance(0.8):
            record["diplomas"] = [_diploma(b, level, graduated_on, 0.7)]
        if "diplomas" not in record or b.chance(0.4):
            record["titles"] = [
                {
                    "title_certificate_no": b.reference("ZC"),
                    "name": b.rng.choice(TITLES),
                    "level": b.pick({"junior": 20, "intermediate": 55, "senior": 25}),
                    "status": "revoked" if b.chance(0.01) else "valid",
                }
            ]
        employer = b.rng.choice(employers)
        months = b.pick({"24": 40, "12": 30, "7": 15, "4": 10, "1": 5})
        start = (year * 12 + b.today.month - 1) - int(months) + 1
        ongoing = b.chance(0.9)
        end = None if ongoing else start + int(months) - 1
        record["social_security"] = [
            {
                "employer_uscc": employer["uscc"],
                "region": employer["region"],
                "from": f"{start // 12:04d}-{start % 12 + 1:02d}",
                "to": None if end is None else f"{end // 12:04d}-{end % 12 + 1:02d}",
            }
        ]
    elif kind == "overseas_returnee":
        level = b.pick({"bachelor": 15, "master": 70, "doctorate": 15})
        awarded = b.day_between(date(year - 2, 1, 1), date(year, 6, 30))
        born = _born_for(b, level, awarded)
        country = b.rng.choice(list(COUNTRIES))
        record["overseas_certifications"] = [
            {
                "certification_no": b.reference("CSCSE"),
                "level": level,
                "country": country,
                "institution": b.rng.choice(COUNTRIES[country]),
                "awarded_date": awarded.isoformat(),
                "status": "revoked" if b.chance(0.01) else "valid",
            }
        ]
    else:  # postdoc
        graduated_on = date(b.rng.randint(year - 4, year - 1), 6, 30)
        born = _born_for(b, "doctorate", graduated_on)
        record["diplomas"] = [_diploma(b, "doctorate", graduated_on, 1.0)]
        region = b.rng.choice(list(STATIONS)) if b.chance(0.85) else "110108"
        record["postdoc"] = [
            {
                "station": STATIONS.get(region, "北京大学博士后流动站"),
                "station_region": region,
                "status": b.pick({"in_station": 80, "completed": 15, "withdrawn": 5}),
                "entered_on": b.day_between(graduated_on, b.today).isoformat(),
                "left_on": None,
            }
        ]

    local = b.chance(0.05)  # a few already hold a Shenzhen hukou
    birth_region = b.rng.choice(county_codes(born.year))
    hukou = b.rng.choice(list(SHENZHEN)) if local else birth_region
    person: dict[str, Any] = {
        "id_number": b.id_number(birth_region, born),
        "name": b.name(),
        "birth_date": born.isoformat(),
        "status": b.pick({"normal": 995, "cancelled": 3, "deceased": 2}),
        "hukou_region": hukou,
        "criminal_records": (
            [{"offence": b.rng.choice(OFFENCES), "date": f"{year - b.rng.randint(1, 8)}-03-01"}]
            if b.chance(0.005)
            else []
        ),
        "credit": {
            "dishonest_debtor": b.chance(0.02),
            "severe_dishonesty": b.chance(0.005),
            "fraud_bars": (
                [{"revoked_on": b.day_between(date(year - 7, 1, 1), b.today).isoformat()}]
                if b.chance(0.003)
                else []
            ),
        },
        **record,
    }
    return person


def generate(seed: int, persons: int, today: date) -> Iterator[str]:
    """The dataset as text chunks, in order; join or write them as they come."""
    b = _Builder(seed, today)
    employers = _employers(b, max(10, persons // 40))
    yield '{"employers": [\n'
    yield ",\n".join(json.dumps(e, ensure_ascii=False, sort_keys=True) for e in employers)
    yield '\n],\n"persons": [\n'
    for i in range(persons):
        line = json.dumps(_person(b, employers), ensure_ascii=False, sort_keys=True)
        yield (",\n" if i else "") + line
    yield "\n]}\n"
