"""The API's documentation, served by the app itself: the OpenAPI document
(``/api/schema/``, JSON, or YAML with ``?format=yaml``), Swagger UI (``/api/docs/``) and
ReDoc (``/api/redoc/``). Every script, style sheet and icon the two pages load comes from
``/api/docs/static/``, out of installed packages (Swagger UI) or this package (ReDoc,
vendored): the pages request nothing from anywhere else and work offline.

The document is generated once per app, on first request, from the same operation table
the API is routed by.
"""

from __future__ import annotations

import functools
import html
import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, cast

import attrs
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from chatcore.errors import ValidationFailed

from .openapi import JSON, TITLE, VALIDATION_ERROR, build_document, component_name, ref
from .routes import Operation
from .wire import Detail, dumps

HOME_PATH = "/"  # served by .home, documented here with the other pages
SCHEMA_PATH = "/api/schema/"
SWAGGER_PATH = "/api/docs/"
REDOC_PATH = "/api/redoc/"
STATIC_PATH = "/api/docs/static/"
YAML = "application/yaml"
FORMATS = {"json": JSON, "yaml": YAML}

# Pages may load from this server only, in the browser's own words too.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'self'",
    ]
)
ASSET_CACHE = "public, max-age=3600"

# ReDoc's sidebar footer shows Redocly's logo from their CDN: a blank image instead.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
BLANK_IMAGE = b"data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"

JS = "text/javascript"


@attrs.frozen
class Asset:
    """A static file of the documentation pages, and the byte strings swapped in it."""

    source: Traversable
    media_type: str
    replace: tuple[tuple[bytes, bytes], ...] = ()

    def read(self) -> bytes:
        data = self.source.read_bytes()
        for old, new in self.replace:
            data = data.replace(old, new)
        return data


def swagger_ui_dir() -> Traversable:
    """The Swagger UI distribution the swagger-ui-bundle-v2 package installs."""
    return cast(Traversable, importlib.import_module("swagger_ui_bundle").swagger_ui_path)


def assets() -> dict[str, Asset]:
    swagger = swagger_ui_dir()
    ours = resources.files(__package__) / "static"
    return {
        "swagger-ui-bundle.js": Asset(swagger / "swagger-ui-bundle.js", JS),
        "swagger-ui.css": Asset(swagger / "swagger-ui.css", "text/css"),
        "favicon-32x32.png": Asset(swagger / "favicon-32x32.png", "image/png"),
        "swagger-init.js": Asset(ours / "swagger-init.js", JS),
        "redoc.standalone.js": Asset(
            ours / "redoc" / "redoc.standalone.js", JS, ((REDOC_LOGO, BLANK_IMAGE),)
        ),
        "redoc-init.js": Asset(ours / "redoc-init.js", JS),
    }


PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{static}favicon-32x32.png">
{head}</head>
<body>
<div id="{element}"></div>
<script type="application/json" id="{element}-config">{config}</script>
<script src="{static}{script}"></script>
<script src="{static}{element}-init.js"></script>
</body>
</html>
"""

SYSTEM_FONTS = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def _json_for_html(data: object) -> str:
    """JSON to put inside a <script> block: no "</script>" can end it early."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def swagger_page(root: str) -> str:
    config = {
        "url": root + SCHEMA_PATH,
        "dom_id": "#swagger",
        "deepLinking": True,
        "persistAuthorization": True,
        "displayRequestDuration": True,
        "docExpansion": "list",
        "validatorUrl": None,  # else it would send the document to validator.swagger.io
    }
    static = html.escape(root + STATIC_PATH)
    return PAGE.format(
        title=f"{TITLE} API · Swagger UI",
        static=static,
        head=f'<link rel="stylesheet" href="{static}swagger-ui.css">\n',
        element="swagger",
        config=_json_for_html(config),
        script="swagger-ui-bundle.js",
    )


def redoc_page(root: str) -> str:
    options = {
        "expandResponses": "200,201",
        "jsonSampleExpandLevel": 3,
        "hideDownloadButton": False,
        # ReDoc's own fonts would come from Google: the reader's system fonts instead.
        "theme": {
            "typography": {
                "fontFamily": SYSTEM_FONTS,
                "headings": {"fontFamily": SYSTEM_FONTS},
                "code": {"fontFamily": "ui-monospace, 'SFMono-Regular', Menlo, monospace"},
            }
        },
    }
    static = html.escape(root + STATIC_PATH)
    return PAGE.format(
        title=f"{TITLE} API · ReDoc",
        static=static,
        head="",
        element="redoc",
        config=_json_for_html({"url": root + SCHEMA_PATH, "options": options}),
        script="redoc.standalone.js",
    )


def doc_paths(asset_media: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The OpenAPI path items of the routes below (documented as the API is)."""
    page_example = '<!doctype html>\n<html lang="en">...</html>'
    document_example = {"openapi": "3.1.0", "info": {"title": TITLE, "version": "0.1.0"}}

    def page(operation_id: str, summary: str, description: str) -> dict[str, Any]:
        return {
            "get": {
                "operationId": operation_id,
                "summary": summary,
                "description": description,
                "tags": ["documentation"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "The page.",
                        "content": {
                            "text/html": {"schema": {"type": "string"}, "example": page_example}
                        },
                    }
                },
            }
        }

    detail = component_name(Detail)
    return {
        SCHEMA_PATH: {
            "get": {
                "operationId": "schema",
                "summary": "OpenAPI document",
                "description": "This document, generated from the routes. JSON by default, "
                "YAML with `?format=yaml`.",
                "tags": ["documentation"],
                "security": [],
                "parameters": [
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": list(FORMATS), "default": "json"},
                        "example": "yaml",
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 document.",
                        "content": {
                            media: {"schema": {"type": "object"}, "example": document_example}
                            for media in FORMATS.values()
                        },
                    },
                    "400": {
                        "description": "An unknown `format`.",
                        "content": {
                            JSON: {
                                "schema": ref(VALIDATION_ERROR),
                                "example": {"format": [_bad_format("xml")]},
                            }
                        },
                    },
                },
            }
        },
        HOME_PATH: page("home", "Home page", "Links to this documentation, for a person."),
        SWAGGER_PATH: page("swagger_ui", "Swagger UI", "Browse this API and try it out."),
        REDOC_PATH: page("redoc", "ReDoc", "Read this API's reference."),
        STATIC_PATH + "{name}": {
            "get": {
                "operationId": "docs_static",
                "summary": "Documentation assets",
                "description": "The scripts, style sheets and icon of the pages above.",
                "tags": ["documentation"],
                "security": [],
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(asset_media)},
                        "example": "swagger-ui.css",
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The file.",
                        "content": {
                            media: {"schema": {"type": "string"}, "example": "..."}
                            for media in dict.fromkeys(asset_media.values())
                        },
                    },
                    "404": {
                        "description": "No such file.",
                        "content": {
                            JSON: {"schema": ref(detail), "example": {"detail": "Not found."}}
                        },
                    },
                },
            }
        },
    }


def _bad_format(value: str) -> str:
    return f'"{value[:64]}" is not a valid choice.'


class DocSite:
    """One app's documentation: built on first use, then served from memory."""

    def __init__(
        self,
        operations: Sequence[Operation],
        extra_paths: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._operations = tuple(operations)
        self._extra_paths = dict(extra_paths or {})
        self.assets = assets()
        self._files: dict[str, bytes] = {}

    @functools.cached_property
    def document(self) -> dict[str, Any]:
        media = {name: asset.media_type for name, asset in self.assets.items()}
        return build_document(self._operations, {**doc_paths(media), **self._extra_paths})

    @functools.cached_property
    def _rendered(self) -> dict[str, bytes]:
        from apispec.yaml_utils import dict_to_yaml

        plain = json.loads(dumps(self.document))  # fresh objects: YAML without anchors
        return {
            JSON: dumps(self.document),
            YAML: dict_to_yaml(plain, {"allow_unicode": True, "width": 100}).encode(),
        }

    def _file(self, name: str) -> bytes:
        if name not in self._files:
            self._files[name] = self.assets[name].read()
        return self._files[name]

    async def schema(self, request: Request) -> Response:
        fmt = request.query_params.get("format", "json")
        if fmt not in FORMATS:
            raise ValidationFailed.on("format", _bad_format(fmt))
        media = FORMATS[fmt]
        return Response(self._rendered[media], media_type=media)

    async def swagger(self, request: Request) -> Response:
        return _page(swagger_page(request.scope.get("root_path", "")))

    async def redoc(self, request: Request) -> Response:
        return _page(redoc_page(request.scope.get("root_path", "")))

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.assets:
            raise HTTPException(404)
        headers = {"Cache-Control": ASSET_CACHE}
        return Response(self._file(name), media_type=self.assets[name].media_type, headers=headers)


def _page(text: str) -> Response:
    return HTMLResponse(text, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def doc_routes(
    operations: Sequence[Operation], extra_paths: Mapping[str, Mapping[str, Any]] | None = None
) -> list[BaseRoute]:
    """The documentation's routes, each page also without its trailing slash;
    ``extra_paths`` documents the app's other routes (adapters.http.ops)."""
    site = DocSite(operations, extra_paths)
    pages: dict[str, Callable[[Request], Any]] = {
        SCHEMA_PATH: site.schema,
        SWAGGER_PATH: site.swagger,
        REDOC_PATH: site.redoc,
    }
    routes: list[BaseRoute] = []
    for path, endpoint in pages.items():
        for variant in (path, path.rstrip("/")):
            routes.append(Route(variant, endpoint, methods=["GET"]))
    routes.append(Route(STATIC_PATH + "{name}", site.static, methods=["GET"]))
    return routes
