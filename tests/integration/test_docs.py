"""The documentation against a live server: schemathesis sends every documented operation
requests generated from the document and checks each answer against it, and a headless
Chromium uses Swagger UI and ReDoc with every request to anywhere else blocked."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx
import pytest
import schemathesis
from browsing import Watched
from hypothesis import HealthCheck, settings
from playwright.sync_api import expect

from adapters.http.api import OPERATIONS
from adapters.http.docs import DocSite
from adapters.http.ops import ops_paths
from contract_checks import CHECKS
from entrypoints.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "swagger-ui.png"

# --- schema-driven fuzzing ----------------------------------------------------------------

# Fuzzed logins fail by the hundred: the throttle must not lock out the suite's own. Every
# operations endpoint is on, so that each is fuzzed too.
FUZZ_ENV = {
    "CHATCORE_LOGIN_FAILURES_PER_ACCOUNT": "1000000",
    "CHATCORE_LOGIN_FAILURES_PER_ADDRESS": "1000000",
    "CHATCORE_METRICS": "true",
}

# Examples per operation in the fuzzing phase, on top of the document's own examples and
# schemathesis's coverage cases (boundaries, missing and wrong-typed values): the whole
# run stays under a minute on two cores (registering and logging in hash passwords).
# CHATCORE_FUZZ_EXAMPLES=500 digs deeper, by hand.
MAX_EXAMPLES = int(os.environ.get("CHATCORE_FUZZ_EXAMPLES", "25"))

# The checks, both directions of document and parser agreeing included, and the one
# table of domain rules they allow for: tests/contract_checks.py.


@attrs.frozen
class FuzzTarget:
    """A server of its own (fuzzing creates and deletes at random), a user and an admin."""

    url: str
    user_token: str
    admin_token: str
    username: str
    password: str

    def headers_for(self, case: schemathesis.Case) -> dict[str, str]:
        """Every operation is fuzzed with credentials: the admin's for the admin paths (a
        user gets 404 there, which tests little), a throwaway token for logout (it revokes
        the token it is called with), the user's for the rest. Public operations ignore
        them."""
        if "admin" in (case.operation.tags or ()):
            return {"Authorization": f"Token {self.admin_token}"}
        if case.operation.definition.raw.get("operationId") == "logout":
            return {"Authorization": f"Token {self._fresh_token()}"}
        return {"Authorization": f"Token {self.user_token}"}

    def _fresh_token(self) -> str:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            response = client.post(
                "/api/login/", json={"username": self.username, "password": self.password}
            )
        assert response.status_code == 200, response.text
        token = response.json()["token"]
        assert isinstance(token, str)
        return token


@pytest.fixture(scope="module")
def fuzz_server(server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A `chatcore serve` of its own for this module, started by the harness's Server class
    (conftest.py cannot be imported, and its server_factory fixture is per test while
    schemathesis makes one test per operation), with FUZZ_ENV."""
    workdir = tmp_path_factory.mktemp("fuzz")
    own = type(server)(workdir / "fuzz.sqlite3", workdir, FUZZ_ENV)
    try:
        yield own
    finally:
        own.stop()


@pytest.fixture(scope="module")
def fuzz_target(fuzz_server: Any, api: Any, make_admin: Any) -> FuzzTarget:
    with fuzz_server.client() as client:
        username = api.unique("fuzz")
        _, token = api.register(client, username=username)
        admin = make_admin(fuzz_server, client, api)
        served = client.get("/api/schema/")
    assert served.status_code == 200, served.text
    assert served.json() == DOCUMENT, "the server serves another document than the code builds"
    return FuzzTarget(fuzz_server.url, token, admin["token"], username, api.PASSWORD)


# The document the code builds for the fuzzed server's settings, loaded when pytest collects
# this module (schemathesis makes one test per operation from it); the fixture above checks
# the server serves the same.
DOCUMENT = DocSite(OPERATIONS, ops_paths(Settings.from_env(FUZZ_ENV).operations())).document
schema = schemathesis.openapi.from_dict(DOCUMENT)


# Every documented operation is fuzzed, the documentation's own included; none is left out.
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,  # a request that hashes a password takes its time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, fuzz_target: FuzzTarget
) -> None:
    response = case.call(
        base_url=fuzz_target.url, headers=fuzz_target.headers_for(case), timeout=30
    )
    case.validate_response(response, checks=CHECKS)


# --- the pages in a real browser ----------------------------------------------------------


def documented_paths(client: httpx.Client) -> list[str]:
    document = client.get("/api/schema/").json()
    return [path for path in document["paths"] if path.startswith("/api/")]


def test_swagger_ui_authorizes_and_tries_an_operation_offline(
    watched: Watched, server: Any, client: httpx.Client, api: Any
) -> None:
    _, token = api.register(client)
    paths = documented_paths(client)
    page = watched.page
    page.goto(server.url + "/api/docs/")
    page.wait_for_selector(".opblock")
    listed = page.eval_on_selector_all(
        ".opblock-summary-path", "els => els.map(e => e.getAttribute('data-path'))"
    )
    assert set(paths) <= set(listed), set(paths) - set(listed)

    page.click("button.authorize")
    token_form = page.locator(".auth-container").filter(has_text="Token").first
    token_form.locator("input").fill(f"Token {token}")
    token_form.locator("button.authorize").click()
    expect(token_form.get_by_role("button", name="Remove authorization")).to_be_visible()
    page.locator(".modal-ux button.btn-done").first.click()

    me = page.locator("#operations-accounts-me")
    me.locator(".opblock-summary").click()
    me.locator(".try-out__btn").click()
    with page.expect_response(lambda r: urlsplit(r.url).path == "/api/me/") as answer:
        me.locator("button.execute").click()
    assert answer.value.status == 200
    assert answer.value.request.headers["authorization"] == f"Token {token}"
    status = me.locator(".live-responses-table tr.response .response-col_status").first
    expect(status).to_have_text("200")
    expect(me.locator(".live-responses-table")).to_contain_text('"username"')

    # The README's picture: the accounts operations, GET /api/me/ tried with its answer.
    # Written to docs/ only when asked (CHATCORE_UPDATE_SCREENSHOT=1): a test run leaves
    # the work tree as it found it.
    page.set_viewport_size({"width": 1280, "height": 1280})
    page.locator("#operations-tag-accounts").evaluate("e => e.scrollIntoView({block: 'start'})")
    shot = page.screenshot()
    assert shot.startswith(b"\x89PNG")
    if os.environ.get("CHATCORE_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(shot)
    watched.assert_clean()


def test_redoc_lists_every_path_offline(
    watched: Watched, server: Any, client: httpx.Client
) -> None:
    paths = documented_paths(client)
    page = watched.page
    page.goto(server.url + "/api/redoc/")
    page.wait_for_selector("[role=menuitem]")
    page.wait_for_load_state("networkidle")
    html = page.content()
    missing = [path for path in paths if path not in html]
    assert not missing, missing
    expect(page.get_by_text("WebSocket").first).to_be_visible()
    watched.assert_clean()


def test_the_browser_gate_records_what_it_blocks(watched: Watched, server: Any) -> None:
    """The tests above would miss nothing: a request elsewhere is caught, never sent."""
    page = watched.page
    page.goto(server.url + "/api/schema/")  # JSON: no page policy to stop the fetch first
    page.evaluate("() => fetch('http://192.0.2.1/probe.js').catch(() => null)")
    assert watched.outside == ["http://192.0.2.1/probe.js"]
    assert any("192.0.2.1" in problem for problem in watched.problems)
