"""Jinja2 templates of the dashboard, autoescaped and stripped of control characters:
customer text is hostile in HTML too."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from auditor.core.text import plain_text

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
