"""Request parameters: parsed and validated before anything reaches the store.

Every check fails with a 400 problem naming the parameter. Tenant ids and subscription ids must
be GUIDs, snapshot ids ``YYYYMMDDTHHMMSSZ``, instants RFC 3339 with a zone; standards are
matched as opaque strings and never used in a query or key.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from auditor.api.problems import invalid
from auditor.api.representation import Format
from auditor.core import wording
from auditor.core.diff import ChangeKind, Level
from auditor.core.snapshot import SNAPSHOT_ID, TENANT_ID, slot_of
from auditor.services import diff_query
from auditor.services.history import SnapshotRef

FUNCTION_KEY_PARAMETER = "code"  # the Functions host's key; never ours to interpret or echo

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
REF_WORDS = wording.SNAPSHOT_REF

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


def tenant_id(value: str) -> str:
    """A tenant id (GUID), lower-cased."""
    if not TENANT_ID.match(value):
        raise invalid("tenantId", f"tenantId: {wording.TENANT_ID}")
    return value.lower()


def snapshot_ref(name: str, value: str | None) -> SnapshotRef | None:
    """A snapshot id or an RFC 3339 instant with a zone (``Z`` or ``±hh:mm``)."""
    if value is None:
        return None
    text = value.strip()
    if SNAPSHOT_ID.match(text):
        try:
            slot_of(text)
        except ValueError:
            raise invalid(
                name, f"{name}: {text!r} names no real time; {name} {REF_WORDS}"
            ) from None
        return SnapshotRef(snapshot_id=text)
    # An unencoded '+' in a query string arrives as a space: take it back.
    if " " in text[19:]:
        text = text[:19] + text[19:].replace(" ", "+")
    if not _RFC3339.match(text):
        raise invalid(name, f"{name}: {REF_WORDS}")
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise invalid(name, f"{name}: {value!r} names no real time; {name} {REF_WORDS}") from None
    return SnapshotRef(instant=moment.astimezone(UTC))


def _checked(check: Callable[[], T]) -> T:
    """`check()`, its BadValue as the 400 problem naming the parameter (same words)."""
    try:
        return check()
    except diff_query.BadValue as exc:
        raise invalid(exc.parameter or "request", exc.detail) from None


def choices(name: str, raw: Iterable[str] | None, kind: type[E]) -> frozenset[E]:
    """Values of an enumerated filter (comma-separated or repeated)."""
    return _checked(lambda: diff_query.choices(name, raw, kind))


def subscriptions(raw: Iterable[str] | None) -> frozenset[str]:
    return _checked(lambda: diff_query.subscriptions(raw))


def standards(raw: Iterable[str] | None) -> frozenset[str]:
    """Standard names, matched exactly (repeat the parameter for several; no splitting)."""
    return _checked(lambda: diff_query.standards(raw))


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(arg) for arg in typing.get_args(annotation))
    return False


def _query_params(dependant: Dependant) -> Iterator[Any]:
    yield from dependant.query_params
    for sub in dependant.dependencies:
        yield from _query_params(sub)


def _declared(route: APIRoute) -> tuple[frozenset[str], frozenset[str]]:
    """(every query parameter the route declares, those that may repeat)."""
    cached = _DECLARED.get(id(route))
    if cached is None:
        names, repeatable = set(), set()
        for param in _query_params(route.dependant):
            names.add(param.alias)
            if _is_sequence(param.field_info.annotation):
                repeatable.add(param.alias)
        cached = (frozenset(names), frozenset(repeatable))
        _DECLARED[id(route)] = cached
    return cached


# Keyed by id(): routes are not hashable, and live as long as the process.
_DECLARED: dict[int, tuple[frozenset[str], frozenset[str]]] = {}


async def reject_unknown_query(request: Request) -> None:
    """Dependency: a query parameter the route does not declare, or a single-valued one given
    twice, is a 400 naming it (the Functions key ``code`` is allowed everywhere)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    names, repeatable = _declared(route)
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name == FUNCTION_KEY_PARAMETER:
            continue
        if name not in names:
            shown = name[:64]
            takes = wording.listing(names) if names else "no query parameters"
            raise invalid(shown, f"{shown}: unknown query parameter; this route takes {takes}")
        if name in seen and name not in repeatable:
            raise invalid(name, f"{name} may be given only once")
        seen.add(name)


# -- declarations shared by routes (OpenAPI documents them exactly as validated) ---------------

GUID_REGEX = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
REF_REGEX = (
    r"^(\d{8}T\d{6}Z|\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+ -]\d{2}:\d{2}))$"
)
REF_HELP = (
    f"A snapshot id like {wording.SNAPSHOT_ID_EXAMPLE} (exactly that snapshot) or an instant "
    f"with a zone like {wording.INSTANT_EXAMPLE} (the latest committed snapshot at or before "
    "it; a date alone or a time without a zone is refused as ambiguous)."
)

# What a parameter with a declared pattern must be, in words: FastAPI's own validation error
# quotes the regular expression, which is for machines (it stays in the OpenAPI schema).
WORDS: dict[str, str] = {
    "from": REF_WORDS,
    "to": REF_WORDS,
    "snapshot": REF_WORDS,
    "body.from": REF_WORDS,
    "body.to": REF_WORDS,
    "tenantId": wording.TENANT_ID,
    "subscription": wording.SUBSCRIPTION_IDS,
    "change": wording.one_of(kind.value for kind in ChangeKind),
    "level": wording.one_of(level.value for level in Level),
    "reportId": wording.REPORT_ID,
}

TenantIdPath = Annotated[
    str,
    Path(
        alias="tenantId",
        pattern=GUID_REGEX,
        description=f"Entra ID tenant id, a GUID like {wording.GUID_EXAMPLE} (any case).",
    ),
]
FormatQuery = Annotated[
    Format | None,
    Query(
        alias="format",
        description="csv or json; overrides the Accept header (csv: the rows of `value`).",
    ),
]
SkipTokenQuery = Annotated[
    str | None,
    Query(
        alias="$skipToken",
        max_length=2048,
        description="Continuation token from a previous page's nextLink (opaque).",
    ),
]


def top_query(default: int, maximum: int) -> Any:
    return Query(
        alias="$top",
        ge=1,
        le=maximum,
        description=f"Page size (default {default}, at most {maximum}).",
    )
