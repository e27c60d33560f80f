"""``/``: a small page for a person who opens the server in a browser, linking the API's
documentation. It stands in until a chat client is served there.

The page is self-contained (no script, style sheet, image or font) and says so in its
Content-Security-Policy: a browser will load nothing for it, from here or elsewhere,
beyond what ``default-src 'self'`` allows, and nothing inline.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from .docs import HOME_PATH, REDOC_PATH, SCHEMA_PATH, SWAGGER_PATH
from .openapi import TITLE

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

LINKS = (
    (SWAGGER_PATH, "Swagger UI", "browse the API and try each operation"),
    (REDOC_PATH, "ReDoc", "the same reference, laid out for reading"),
    (SCHEMA_PATH, "OpenAPI document", "the machine-readable description (JSON; ?format=yaml)"),
)

PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
</head>
<body>
<h1>{title}</h1>
<p>This server speaks the {title} API: REST under <code>{root}/api/</code>, real-time
delivery over WebSockets at <code>{root}/ws/chat/{{chat_id}}/</code>. It serves no chat
client yet; the API documents itself:</p>
<ul>
{links}
</ul>
</body>
</html>
"""


def home_page(root: str) -> str:
    """The page, its links under ``root`` (the ASGI root path when mounted below one)."""
    links = "\n".join(
        f'<li><a href="{html.escape(root + path)}">{name}</a>: {html.escape(what)}</li>'
        for path, name, what in LINKS
    )
    return PAGE.format(title=html.escape(TITLE), root=html.escape(root), links=links)


async def home(request: Request) -> Response:
    page = home_page(request.scope.get("root_path", ""))
    return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def home_routes() -> list[BaseRoute]:
    return [Route(HOME_PATH, home, methods=["GET"])]
