"""Our own OpenAPI descriptions of the PCF and spending-limit services agree with the 3GPP
documents (paths, methods, attribute names, required attributes) without copying them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import conformance as c

ROOT = Path(__file__).resolve().parents[2]
OURS = {"pcf.yaml": c.PCF, "slc.yaml": c.SLC}


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        out: Any = doc
        for part in ref[2:].split("/"):
            out = out[part]
        return _resolve(doc, out)
    return node


@pytest.mark.parametrize(("ours", "theirs"), OURS.items())
def test_our_document_is_valid_openapi_and_names_its_3gpp_source(ours: str,
                                                                  theirs: str) -> None:
    path = ROOT / "openapi" / ours
    c.load(str(path))  # openapi-core validates the document itself
    doc = c.read_yaml(path)
    assert doc["info"]["x-3gpp-spec"] == theirs
    assert "3GPP Organizational Partners" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("ours", "theirs"), OURS.items())
def test_paths_and_methods_exist_in_the_3gpp_document(ours: str, theirs: str) -> None:
    mine = c.read_yaml(ROOT / "openapi" / ours)
    spec = c.read_yaml(c.spec_path(theirs))
    assert mine["servers"][0]["url"] == spec["servers"][0]["url"]
    for p, item in mine["paths"].items():
        assert p in spec["paths"], p
        for method in item:
            if method != "parameters":
                assert method in spec["paths"][p], f"{method} {p}"
                for status in item[method]["responses"]:
                    assert status in spec["paths"][p][method]["responses"], (p, status)


@pytest.mark.parametrize(("ours", "theirs"), OURS.items())
def test_schemas_use_3gpp_attribute_names_and_required_sets(ours: str, theirs: str) -> None:
    mine = c.read_yaml(ROOT / "openapi" / ours)
    spec = c.read_yaml(c.spec_path(theirs))
    common = c.read_yaml(c.spec_path(c.COMMON))
    checked = 0
    for name, schema in mine["components"]["schemas"].items():
        other = spec["components"]["schemas"].get(name) or \
            common["components"]["schemas"].get(name)
        if other is None or "properties" not in schema:
            continue
        checked += 1
        props = other.get("properties", {})
        for attr in schema["properties"]:
            assert attr in props, f"{name}.{attr} is not a 3GPP attribute"
        assert set(other.get("required", [])) <= set(schema.get("required", [])), name
    assert checked >= 3
