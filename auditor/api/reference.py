"""The browsable API reference: one HTML page rendered from the app's own OpenAPI document.

No script, no CDN, no copied assets: the page is HTML and one stylesheet, both answered by the
app, under a Content-Security-Policy that allows nothing else (``default-src 'none'``). Every
text of the document is escaped; Markdown is reduced to paragraphs, ``code`` and **bold**.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

CSP = (
    "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-cache",
}
METHODS = ("get", "post", "put", "patch", "delete")

STYLESHEET = """\
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 64rem; padding: 1rem 2rem;
  color: #1b1b1b; background: #fff; }
h1, h2, h3 { line-height: 1.2; } h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; }
section.op { border: 1px solid #d0d7de; border-radius: 6px; padding: 0 1rem 1rem; margin: 1rem 0; }
.method { display: inline-block; min-width: 4.5rem; font-weight: 700; color: #fff;
  background: #0b5cad; border-radius: 4px; padding: 0 .4rem; text-align: center; }
.method.post { background: #1a7f37; }
code { font: 13px/1.4 ui-monospace, monospace; background: #f3f4f6; padding: 0 .2rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } nav ul { columns: 2; }
@media print { section.op { break-inside: avoid; } }
"""

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold** (the Markdown the descriptions use)."""
    out = html.escape(text, quote=True)
    out = _CODE.sub(r"<code>\1</code>", out)
    return _BOLD.sub(r"<strong>\1</strong>", out)


def _prose(text: str | None) -> str:
    if not text:
        return ""
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "".join(f"<p>{_inline(' '.join(p.split()))}</p>" for p in paragraphs)


def _anchor(*parts: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", " ".join(parts).lower()).strip("-")


def _type_of(schema: Mapping[str, Any]) -> str:
    """A schema in a few words: type, enum, default, ref."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        kind = f"list of {_type_of(schema.get('items', {}))}"
    bounds = [f"{k} {schema[k]}" for k in ("minimum", "maximum", "maxLength") if k in schema]
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _rows(cells: Iterator[tuple[str, ...]], head: tuple[str, ...]) -> str:
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells)
    if not body:
        return ""
    heading = "".join(f"<th>{h}</th>" for h in head)
    return f"<table><thead><tr>{heading}</tr></thead><tbody>{body}</tbody></table>"


def _operation(path: str, method: str, op: Mapping[str, Any]) -> str:
    params = _rows(
        (
            (
                f"<code>{html.escape(p['name'])}</code>",
                html.escape(p.get("in", "")),
                "yes" if p.get("required") else "no",
                html.escape(_type_of(p.get("schema", {}))),
                _inline(" ".join(str(p.get("description", "")).split())),
            )
            for p in op.get("parameters", [])
        ),
        ("parameter", "in", "required", "type", "meaning"),
    )
    responses = _rows(
        (
            (
                html.escape(str(status)),
                _inline(" ".join(str(r.get("description", "")).split())),
                ", ".join(f"<code>{html.escape(m)}</code>" for m in r.get("content", {})),
            )
            for status, r in op.get("responses", {}).items()
        ),
        ("status", "meaning", "media types"),
    )
    return (
        f'<section class="op" id="{_anchor(method, path)}"><h3>'
        f'<span class="method {method}">{method.upper()}</span> <code>{html.escape(path)}</code>'
        f"</h3><p><strong>{_inline(op.get('summary', ''))}</strong></p>"
        f"{_prose(op.get('description'))}{params}{responses}</section>"
    )


def _schema(name: str, schema: Mapping[str, Any]) -> str:
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    rows = _rows(
        (
            (
                f"<code>{html.escape(prop)}</code>",
                html.escape(_type_of(spec)),
                "yes" if prop in required else "no",
                _inline(" ".join(str(spec.get("description", "")).split())),
            )
            for prop, spec in properties.items()
        ),
        ("field", "type", "required", "meaning"),
    )
    heading = f'<h3 id="schema-{_anchor(name)}">{html.escape(name)}</h3>'
    return heading + _prose(schema.get("description")) + rows


def render(document: Mapping[str, Any], stylesheet_url: str) -> str:
    """The reference page of an OpenAPI document."""
    info = document.get("info", {})
    operations = [
        (path, method, op)
        for path, item in document.get("paths", {}).items()
        for method, op in item.items()
        if method in METHODS
    ]
    toc = "".join(
        f'<li><a href="#{_anchor(m, p)}">{m.upper()} {html.escape(p)}</a></li>'
        for p, m, _ in operations
    )
    servers = _rows(
        ((f"<code>{html.escape(s['url'])}</code>", _inline(s.get("description", "")))
         for s in document.get("servers", [])),
        ("server", "meaning"),
    )  # fmt: skip
    schemes = _rows(
        (
            (
                f"<code>{html.escape(name)}</code>",
                html.escape(" ".join(str(s.get(k, "")) for k in ("type", "scheme", "in", "name"))),
                _inline(" ".join(str(s.get("description", "")).split())),
            )
            for name, s in document.get("components", {}).get("securitySchemes", {}).items()
        ),
        ("scheme", "kind", "meaning"),
    )
    schemas = "".join(
        _schema(name, schema)
        for name, schema in sorted(document.get("components", {}).get("schemas", {}).items())
    )
    title = html.escape(str(info.get("title", "API")))
    version = html.escape(str(info.get("version", "")))
    openapi = html.escape(str(document.get("openapi", "")))
    css = html.escape(stylesheet_url)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{title} reference</title><link rel="stylesheet" href="{css}">'
        f"</head><body><header><h1>{title}</h1><p>Version {version}"
        f" &middot; OpenAPI {openapi}: "
        '<a href="openapi.json">openapi.json</a></p></header><main>'
        f"{_prose(info.get('description'))}<h2>Servers and authentication</h2>{servers}{schemes}"
        f"<h2>Operations</h2><nav><ul>{toc}</ul></nav>"
        + "".join(_operation(p, m, op) for p, m, op in operations)
        + f"<h2>Schemas</h2>{schemas}</main></body></html>"
    )
