"""The mock registries' data: the strict loader, and the deterministic synthetic population."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from miaopi.adapters.mock.dataset import Dataset, DatasetError
from miaopi.adapters.mock.generate import county_codes, generate
from miaopi.api.app import create_app
from miaopi.bootstrap import bootstrap
from miaopi.records.clients import create_client
from miaopi.settings import Settings
from tests.conftest import DATA_KEY, RULES, TODAY, Clock

PERSON = {
    "id_number": "420102200203151232",
    "name": "李明",
    "birth_date": "2002-03-15",
    "hukou_region": "420102",
}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"nickname": "x"}, "persons[0] (420102…1232).nickname: Extra inputs are not permitted"),
        ({"id_number": "420102200203151233"}, "id_number: Value error, not a valid resident ID"),
        ({"birth_date": "2002-02-30"}, "persons[0] (420102…1232).birth_date"),
        ({"diplomas": [{"diploma_no": "1", "level": "phd"}]}, "diplomas.0.level"),
        ({"faults": {"police": "slow"}}, "faults.police"),
    ],
)
def test_the_loader_names_the_record_and_field_at_fault(change: dict[str, Any], named: str) -> None:
    with pytest.raises(DatasetError) as caught:
        Dataset.from_data({"persons": [{**PERSON, **change}], "employers": []}, "d.yaml")
    assert named in str(caught.value)
    assert "420102200203151232" not in str(caught.value)  # ID numbers are masked even here


def test_the_loader_refuses_unknown_top_level_keys_and_duplicates() -> None:
    with pytest.raises(DatasetError, match="applicants"):
        Dataset.from_data({"persons": [], "applicants": []})
    with pytest.raises(DatasetError, match="appears twice"):
        Dataset.from_data({"persons": [PERSON, PERSON]})


def _text(seed: int, persons: int) -> str:
    return "".join(generate(seed, persons, TODAY))


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_people() -> None:
    first = _text(7, 2000)
    assert first == _text(7, 2000)
    assert first != _text(8, 2000)


def test_the_population_is_valid_real_and_mixed() -> None:
    data = json.loads(_text(3, 4000))
    dataset = Dataset.from_data(data, "generated")  # every ID number and USCC checked
    assert len(dataset.persons) == 4000
    counties = set(county_codes())
    assert all(p.id_number[:6] in counties for p in dataset.persons.values())
    assert len({p.id_number[:2] for p in dataset.persons.values()}) > 25  # from all over China
    diplomas = [d for p in dataset.persons.values() for d in p.diplomas]
    codes = {"junior_college": "01", "bachelor": "02", "master": "03", "doctorate": "04"}
    for d in diplomas:
        assert re.fullmatch(r"\d{5}1(\d{4})(0[1-4])\d{6}", d.diploma_no)
        assert d.diploma_no[6:10] == str(d.graduation_date.year)
        assert d.diploma_no[10:12] == codes[d.level]
    levels = Counter(d.level for d in diplomas)
    assert levels["bachelor"] > levels["master"] > levels["junior_college"] > 0
    people = list(dataset.persons.values())
    share = lambda pred: sum(map(pred, people)) / len(people)  # noqa: E731
    assert 0.005 < share(lambda p: p.credit.dishonest_debtor) < 0.05
    assert 0.001 < share(lambda p: bool(p.criminal_records)) < 0.02
    assert 0.002 < share(lambda p: any(d.status == "revoked" for d in p.diplomas)) < 0.03
    assert 0.1 < share(lambda p: bool(p.social_security)) < 0.4
    assert 0.05 < share(lambda p: bool(p.overseas_certifications)) < 0.2
    assert 0.03 < share(lambda p: bool(p.postdoc)) < 0.15
    regions = Counter(e.region[:4] for e in dataset.employers.values())
    assert regions["4403"] > 0.8 * len(dataset.employers)


def _claims(person: dict[str, Any], employers: list[dict[str, Any]]) -> dict[str, Any]:
    """The application a person of each kind would make, with their own records."""
    shenzhen = next(
        e for e in employers if e["region"].startswith("4403") and e["status"] == "active"
    )
    if person.get("postdoc"):
        return {"business_type": "postdoc", "claims": {}, "uscc": shenzhen["uscc"]}
    if person.get("overseas_certifications"):
        cert = person["overseas_certifications"][0]["certification_no"]
        return {"business_type": "overseas_returnee", "claims": {"certification_no": cert},
                "uscc": shenzhen["uscc"]}  # fmt: skip
    if person.get("social_security"):
        claims = {}
        if person.get("diplomas"):
            claims["diploma_no"] = person["diplomas"][0]["diploma_no"]
        if person.get("titles"):
            claims["title_certificate_no"] = person["titles"][0]["title_certificate_no"]
        return {"business_type": "in_service", "claims": claims,
                "uscc": person["social_security"][0]["employer_uscc"]}  # fmt: skip
    return {"business_type": "graduate", "uscc": shenzhen["uscc"],
            "claims": {"diploma_no": person["diplomas"][0]["diploma_no"]}}  # fmt: skip


@pytest.mark.anyio
async def test_decisions_on_the_population_give_every_outcome(tmp_path: Path) -> None:
    path = tmp_path / "population.json"
    path.write_text(_text(11, 400), encoding="utf-8")
    data = json.loads(path.read_text(encoding="utf-8"))
    container = bootstrap(
        Settings(
            database_url=f"sqlite:///{tmp_path}/m.db",
            rules_dir=RULES,
            data_key=DATA_KEY,
            mock_dataset=path,
            rate_limit_per_minute=0,  # 150 requests at once; limits have tests of their own
            _env_file=None,  # type: ignore[call-arg]
        ),
        clock=Clock(),
    )
    _, key = create_client(container.database.engine, "admin", "a")
    outcomes: Counter[str] = Counter()
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        for person in data["persons"][:150]:
            plan = _claims(person, data["employers"])
            body = {
                "business_type": plan["business_type"],
                "applicant": {"name": person["name"], "id_number": person["id_number"]},
                "employer": {"uscc": plan["uscc"]},
                "claims": plan["claims"],
                "commitment": {"accepted": True, "version": "2026-01"},
                "consent": {"data_query": True},
            }
            response = await api.post(
                "/v1/evaluations", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert response.status_code == 200, response.text
            outcomes[response.json()["decision"]["outcome"]] += 1
    await container.aclose()
    assert set(outcomes) == {"approved", "rejected", "referred"}, outcomes
    assert outcomes["approved"] > 0.4 * sum(outcomes.values()), outcomes
