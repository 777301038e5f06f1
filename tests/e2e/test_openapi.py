from __future__ import annotations

import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

from miaopi.api.openapi import openapi_document, openapi_yaml
from tests.conftest import REPO


def test_checked_in_openapi_matches_the_app() -> None:
    checked_in = (REPO / "openapi.yaml").read_text(encoding="utf-8")
    assert checked_in == openapi_yaml(), "openapi.yaml is stale: run `miaopi openapi`"


def test_openapi_is_valid_openapi_3_1() -> None:
    document = yaml.safe_load((REPO / "openapi.yaml").read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)


def test_every_contract_endpoint_of_this_release_is_documented() -> None:
    paths = openapi_document()["paths"]
    assert {"post"} <= paths["/v1/applications"].keys()
    assert {"get"} <= paths["/v1/applications"].keys()
    assert "get" in paths["/v1/applications/{case_id}"]
    assert "post" in paths["/v1/evaluations"]
    assert "get" in paths["/healthz"]
    assert "get" in paths["/readyz"]
