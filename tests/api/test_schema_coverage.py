"""The OpenAPI schema covers the routed API and states its limits; the docs page works offline."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import jsonschema
import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from config.api.inputs import DEFAULT_PAGE, MAX_CURSOR, MAX_PAGE, REF_SCHEMA, ref_refusal
from financing.services.requests import MAX_RECEIVABLES_PER_ADVANCE
from ledger.api.views import MAX_EVENTS
from ledger.event_fields import REF_MAX_LENGTH
from tests.api.conftest import merchant_signed_client, signed_client

API_PREFIX = "/api/v1/"
SIGNED_HEADERS = {"Chainfin-Timestamp", "Chainfin-Signature", "Idempotency-Key"}
PROBLEM_REF = "#/components/schemas/Problem"
_CONVERTER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
_CONVERTER_TYPES = {"int": "integer", "str": "string", "slug": "string", "path": "string"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(route as written in the URLconf, view) for every pattern, through every include()."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def _api_routes() -> dict[str, tuple[set[str], dict[str, str]]]:
    """OpenAPI path -> (HTTP methods the view answers, path parameter name -> JSON type)."""
    routes = {}
    for route, view in _routes(get_resolver().url_patterns):
        path = "/" + route
        if not path.startswith(API_PREFIX):
            continue
        assert "^" not in route and "(?" not in route, f"{route}: a regex route; map it here"
        view_class = getattr(view, "view_class", None)
        assert view_class is not None, f"{route}: a function view; list its methods here"
        methods = {
            method
            for method in view_class.http_method_names
            if method not in ("options", "head") and hasattr(view_class, method)
        }
        parameters = {
            m["name"]: _CONVERTER_TYPES[m["converter"] or "str"] for m in _CONVERTER.finditer(path)
        }
        routes[_CONVERTER.sub(lambda m: "{" + m["name"] + "}", path)] = (methods, parameters)
    return routes


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "patch", "delete"):
                yield path, method, operation


def test_the_urlconf_has_api_routes() -> None:
    assert len(_api_routes()) >= 6


def test_every_api_route_and_method_is_in_the_schema(schema) -> None:
    routes = _api_routes()
    documented = {
        path: set(item) & {"get", "put", "post", "patch", "delete"}
        for path, item in schema["paths"].items()
    }
    for path, (methods, _) in routes.items():
        assert path in documented, f"{path} is routed but not in the schema"
        assert documented[path] == methods, (
            f"{path}: routed {methods}, documented {documented[path]}"
        )
    assert set(documented) <= set(routes), "the schema documents paths nobody routes"


def test_path_parameters_match_the_url_converters(schema) -> None:
    for path, (_, parameters) in _api_routes().items():
        for method, operation in schema["paths"][path].items():
            documented = {
                p["name"]: p["schema"]["type"]
                for p in operation.get("parameters", [])
                if p["in"] == "path"
            }
            assert documented == parameters, f"{method.upper()} {path}"


class _Assets(HTMLParser):
    """The URLs of the scripts and stylesheets (and icons) a page loads."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        url = named.get("src") if tag == "script" else named.get("href")
        if tag in ("script", "link") and url:
            self.urls.append(url)


def test_docs_render_from_local_static_files_only() -> None:
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()

    parser = _Assets()
    parser.feed(html)
    scripts = [u for u in parser.urls if u.endswith(".js")]
    styles = [u for u in parser.urls if u.endswith(".css")]
    assert scripts and styles, parser.urls
    for url in parser.urls:
        assert url.startswith(settings.STATIC_URL), f"{url} is not one of our static files"
        assert finders.find(url.removeprefix(settings.STATIC_URL)), f"{url} is not shipped"
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), (
        "the docs page names another host"
    )


def test_bearer_security_scheme_guards_every_operation(schema) -> None:
    schemes = schema["components"]["securitySchemes"]
    bearer = {
        name for name, s in schemes.items() if (s["type"], s.get("scheme")) == ("http", "bearer")
    }
    assert bearer, schemes
    for path, method, operation in _operations(schema):
        security = operation.get("security", schema.get("security"))
        assert security, f"{method.upper()} {path} has no security requirement"
        assert all(set(requirement) <= bearer for requirement in security), security
        assert {} not in security, f"{method.upper()} {path} allows anonymous calls"


def test_every_post_documents_the_signature_headers(schema) -> None:
    posts = [(path, op) for path, method, op in _operations(schema) if method == "post"]
    assert posts
    for path, operation in posts:
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        assert set(headers) >= SIGNED_HEADERS, f"POST {path}: {sorted(headers)}"
        assert all(headers[name].get("required") for name in SIGNED_HEADERS), f"POST {path}"


def test_every_operation_documents_401_and_404_problems(schema) -> None:
    """401 everywhere; 404 wherever a path or body names something that may not be yours."""
    for path, method, operation in _operations(schema):
        names_something = "{" in path or "requestBody" in operation
        for status in ("401", "404") if names_something else ("401",):
            response = operation["responses"].get(status)
            assert response, f"{method.upper()} {path} does not document {status}"
            refs = {c["schema"].get("$ref") for c in response.get("content", {}).values()}
            assert refs == {PROBLEM_REF}, f"{method.upper()} {path} {status}: {refs}"


def test_problem_responses_are_documented_as_problem_json(schema) -> None:
    for path, method, operation in _operations(schema):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                media = set(response.get("content", {}))
                assert media == {"application/problem+json"}, f"{method.upper()} {path} {status}"


def test_events_post_has_valid_examples(schema) -> None:
    operation = schema["paths"]["/api/v1/events"]["post"]
    content = operation["requestBody"]["content"]["application/json"]
    examples = content.get("examples", {})
    assert examples, "POST /api/v1/events has no request example"
    components = {"components": schema["components"]}
    for example in examples.values():
        jsonschema.validate(example["value"], {**content["schema"], **components})
    created = operation["responses"]["201"]["content"]["application/json"]
    for example in created.get("examples", {}).values():
        jsonschema.validate(example["value"], {**created["schema"], **components})


def _parameter(schema: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    operation = schema["paths"][path][method]
    [parameter] = [p for p in operation.get("parameters", []) if p["name"] == name]
    return parameter


def _component(schema: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["components"]["schemas"][name]
    return found


def test_the_schema_states_the_limits_the_server_enforces(schema) -> None:
    """So a client generated from the schema never sends what is refused; the tests below
    hold the server to the same numbers."""
    limits = [
        (path, p["schema"])
        for path, method, operation in _operations(schema)
        for p in operation.get("parameters", [])
        if p["name"] == "limit"
    ]
    assert {path for path, _ in limits} == {
        "/api/v1/merchants/{seller_id}/entries",
        "/api/v1/receivables",
    }
    for path, limit in limits:
        assert (limit["type"], limit["minimum"], limit["maximum"]) == ("integer", 1, MAX_PAGE), path
        assert limit["default"] == DEFAULT_PAGE
    after_seq = _parameter(schema, "/api/v1/merchants/{seller_id}/entries", "get", "after_seq")
    assert (after_seq["schema"]["minimum"], after_seq["schema"]["maximum"]) == (0, MAX_CURSOR)

    events = _component(schema, "EventBatchInRequest")["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (1, MAX_EVENTS)
    assert _component(schema, "EventInRequest")["properties"]["ref"].items() >= REF_SCHEMA.items()

    receivables = _component(schema, "ReceivableRefsRequest")["properties"]["receivables"]
    assert (receivables["minItems"], receivables["maxItems"]) == (1, MAX_RECEIVABLES_PER_ADVANCE)
    assert receivables["items"] == REF_SCHEMA
    assert REF_SCHEMA["maxLength"] == REF_MAX_LENGTH and REF_SCHEMA["minLength"] == 1
    after = _parameter(schema, "/api/v1/receivables", "get", "after")
    assert after["schema"] == REF_SCHEMA

    epcis_merchant = _parameter(schema, "/api/v1/logistics/epcis", "post", "merchant")
    assert epcis_merchant["required"] is True
    assert epcis_merchant["schema"]["minLength"] == 1

    for path, method, _ in _operations(schema):
        if method != "post":
            continue
        key = _parameter(schema, path, "post", "Idempotency-Key")["schema"]
        assert (key["minLength"], key["maxLength"]) == (1, 255), path
        assert re.fullmatch(key["pattern"], "~ !") and not re.fullmatch(key["pattern"], "é")
        stamp = _parameter(schema, path, "post", "Chainfin-Timestamp")["schema"]
        assert re.fullmatch(stamp["pattern"], "1767225600"), path


@pytest.mark.parametrize(
    "value",
    ["INV-1", "a", "a b", "INV/2026/7", "Ü-7", "x" * 128, "", " a", "a ", "\t", "a\x00b",
     "a\x1fb", "a\x7f", "a\x85", "a\u202eb", "a\u2066", "\ufdd0", "a\uffff", "\ud800"],
)  # fmt: skip
def test_the_ref_pattern_is_the_servers_ref_rule(value: str) -> None:
    """The pattern clients read and the rule the server applies (ledger.event_fields.Ref) agree."""
    by_pattern = re.fullmatch(REF_SCHEMA["pattern"], value) is not None
    by_server = ref_refusal(value) is None

    assert by_pattern == by_server


@pytest.mark.django_db
def test_the_server_enforces_the_stated_limits(merchant) -> None:
    api = signed_client(merchant.links.get().marketplace)
    entries = f"/api/v1/merchants/{merchant.links.get().seller_id}/entries"
    for limit, status in ((0, 422), (1, 200), (MAX_PAGE, 200), (MAX_PAGE + 1, 422)):
        for path in (entries, "/api/v1/receivables"):
            assert api.get(f"{path}?limit={limit}").status_code == status, (path, limit)
    keys = (("k" * 255, 422), ("k" * 256, 400), ("k\u00e9", 400))
    now = int(time.time())  # once: read per request, a clock tick could make two stamps equal
    for age, (key, status) in enumerate(keys):
        # 422: the key is accepted and the (empty) body refused; 400: the key is refused.
        # Signed a second apart: the same body signed in the same second is a replay.
        stamp = now - age
        response = api.post("/api/v1/events", {"events": []}, idempotency_key=key, timestamp=stamp)
        assert response.status_code == status, (key, response.content)
    too_many = {"events": [{}] * (MAX_EVENTS + 1)}
    assert api.post("/api/v1/events", too_many).status_code == 422
    assert api.post("/api/v1/logistics/epcis", {}).status_code == 422  # no ?merchant=

    as_merchant = merchant_signed_client(merchant)
    too_many_refs = {"receivables": [f"INV-{n}" for n in range(MAX_RECEIVABLES_PER_ADVANCE + 1)]}
    assert as_merchant.post("/api/v1/advances/quote", too_many_refs).status_code == 422
    too_long = {"receivables": ["x" * (REF_MAX_LENGTH + 1)]}
    assert as_merchant.post("/api/v1/advances/quote", too_long).status_code == 422
