"""Security headers on every response, and the documentation pages that live within them.

The policy allows nothing from outside the service and no inline script at all: the
dashboard and the docs pages load their scripts as files. Only ReDoc's page allows
inline styles, which it writes as it renders. Put HSTS
(``Strict-Transport-Security``) on the TLS proxy in front, where HTTPS is known.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# ReDoc styles itself with styled-components, which writes <style> elements at run time,
# and searches in a worker it makes from a blob: its page alone allows both (never an
# inline script).
REDOC_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'") + (
    "; worker-src 'self' blob:"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

# Swagger UI and ReDoc from an installed package: many networks reach no CDN.
DOCS_ASSETS = Path(str(importlib.resources.files("fastapi_offline") / "static"))

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="icon" href="/docs-assets/favicon.png">
  {head}
</head>
<body>
  {body}
</body>
</html>
"""


def swagger_page(title: str) -> str:
    """Swagger UI for ``/openapi.json``, its start-up in a file (no inline script)."""
    return _PAGE.format(
        title=f"{title} - API",
        head='<link rel="stylesheet" href="/docs-assets/swagger-ui.css">',
        body='<div id="swagger-ui"></div>\n'
        '  <script src="/docs-assets/swagger-ui-bundle.js"></script>\n'
        '  <script src="/static/docs/swagger.js"></script>',
    )


def redoc_page(title: str) -> str:
    """ReDoc for ``/openapi.json``."""
    return _PAGE.format(
        title=f"{title} - ReDoc",
        head='<link rel="stylesheet" href="/static/docs/redoc.css">',
        body='<redoc spec-url="/openapi.json"></redoc>\n'
        '  <script src="/docs-assets/redoc.standalone.js"></script>',
    )


@functools.cache
def redoc_script() -> bytes:
    """ReDoc's bundle, without the one image it would fetch from its makers' CDN (its
    "by Redocly" logo): the page loads nothing from outside the service."""
    bundle = (DOCS_ASSETS / "redoc.standalone.js").read_bytes()
    return bundle.replace(b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"data:,")
