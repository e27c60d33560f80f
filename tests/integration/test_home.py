"""`/` on a live server: a page for a person, linking the documentation, that loads
nothing and is locked down by its Content-Security-Policy."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import httpx

from adapters.http.home import home_page

DOC_PAGES = {"/api/docs/", "/api/redoc/", "/api/schema/"}
# Attributes by which a page makes the browser fetch or send something.
FETCHING = {"src", "href", "action", "data", "poster", "srcset", "formaction", "background"}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(page)
    parser.close()
    return parser.tags


def policy(response: httpx.Response) -> dict[str, list[str]]:
    header = response.headers["content-security-policy"]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


def test_home_links_every_documentation_page_and_each_answers(server: Any) -> None:
    with server.client() as http:
        home = http.get("/")
        assert home.status_code == 200, home.text
        assert home.headers["content-type"].startswith("text/html")
        links = {attrs["href"] for tag, attrs in parse(home.text) if tag == "a"}
        assert links == DOC_PAGES
        for link in links:
            assert link is not None
            assert http.get(link).status_code == 200, link
        assert http.head("/").status_code == 200


def test_home_loads_nothing_and_its_policy_allows_nothing_else(server: Any) -> None:
    with server.client() as http:
        home = http.get("/")
    tags = parse(home.text)
    assert not [tag for tag, _ in tags if tag in {"script", "style", "link", "img", "iframe"}]
    assert not [attrs for _, attrs in tags if any(name.startswith("on") for name in attrs)]
    for tag, attrs in tags:
        for name in FETCHING & set(attrs):
            value = attrs[name] or ""
            assert value.startswith("/"), (tag, name, value)  # this server's own paths
            assert not value.startswith("//"), (tag, name, value)
    directives = policy(home)
    assert directives["default-src"] == ["'self'"]
    loosened = {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "blob:", "http:", "https:"}
    assert not loosened & {value for values in directives.values() for value in values}
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]


def test_home_answers_other_methods_405_in_the_api_shape(server: Any, api: Any) -> None:
    with server.client() as http:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = http.request(method, "/")
            api.assert_detail(response, 405)


def test_home_links_stay_under_the_root_path() -> None:
    # Mounted under a prefix (uvicorn --root-path, a proxy), the links keep it, escaped.
    for root in ("", "/chat", '/a"<b>'):
        hrefs = [attrs["href"] for tag, attrs in parse(home_page(root)) if tag == "a"]
        assert hrefs == [root + path for path in ("/api/docs/", "/api/redoc/", "/api/schema/")]
