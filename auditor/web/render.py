"""Jinja2 templates of the dashboard, autoescaped and stripped of control characters:
customer text is hostile in HTML too."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from auditor.core.text import plain_text
from auditor.services.bounded_cache import BoundedCache

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f} %"


def _signed(value: float | None) -> str:
    if value is None:
        return ""
    return "±0" if value == 0 else f"{value:+.1f}"


def _finalize(value: Any) -> Any:
    # Every string a template prints is stripped of control and bidi characters (customer text
    # such as names and standards); markup the app built itself (charts) is left alone.
    if isinstance(value, str) and not isinstance(value, Markup):
        return plain_text(value)
    return value


@cache
def environment() -> Environment:
    env = Environment(
        finalize=_finalize,
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, percent=_percent, signed=_signed, plain=plain_text)
    return env


def render(template: str, **values: Any) -> str:
    return environment().get_template(template).render(**values)


class RowCache:
    """Rendered table rows, reused while what they show is unchanged.

    A portfolio row shows only immutable snapshot data plus its status, regressions and
    sparkline: keyed by those, its HTML is rendered once, and a page of 1,000 tenants joins
    cached fragments instead of rendering 100,000 template nodes per view.
    """

    def __init__(self, template: str, max_rows: int = 20_000) -> None:
        self._template = template
        self._rows: BoundedCache[Hashable, Markup] = BoundedCache(max_rows, lambda _: 1)

    def __call__(self, key: Hashable, **values: Any) -> Markup:
        return self._rows.get_or_load(
            key,
            lambda: Markup(environment().get_template(self._template).render(**values)),  # noqa: S704 - an autoescaped template's output
        )
