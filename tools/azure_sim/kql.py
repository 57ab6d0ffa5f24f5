"""The KQL subset the simulator understands (documented in docs/simulator.md).

Grammar::

    query     := table ( '|' operator )*
    table     := resourcecontainers | managedserviceresources | securityresources  (any case)
    operator  := 'where' predicate ( 'and' predicate )*
               | 'project' column ( ',' column )*
               | ('order' | 'sort') 'by' column [asc|desc] ( ',' column [asc|desc] )*
    predicate := column ( '==' | '=~' | '!=' | '!~' ) string
               | column ( 'in' | 'in~' | '!in' | '!in~' ) '(' string ( ',' string )* ')'
    string    := '...' | "..."   (backslash escapes)

Column names are case-sensitive, as in ARG. ``where`` and ``order by`` work on the string columns
(id, name, type, tenantId, kind, location, resourceGroup, subscriptionId, managedBy); ``project``
takes any top-level column. As in KQL, ``order by`` without a direction sorts descending.
Anything else raises ``KqlError`` (served as ARG's 400 InvalidQuery).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .estate import COLUMN_INDEX, COLUMNS, SCALAR_COLUMNS, TABLES

SCALAR_INDEX = {c: i for i, c in enumerate(SCALAR_COLUMNS)}
COMPARISONS = ("==", "=~", "!=", "!~")
SET_OPS = ("in", "in~", "!in", "!in~")


class KqlError(Exception):
    """An unsupported or invalid query.

    ``kind`` is ``"parser"`` (syntax outside the subset: ParserFailure detail) or ``"semantic"``
    (unknown table or column).
    """

    def __init__(self, message: str, *, kind: str = "parser", position: int = 0, near: str = ""):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.position = position
        self.near = near


@dataclass(frozen=True)
class Predicate:
    column: str
    op: str
    values: tuple[str, ...]

    def matches(self, value: str) -> bool:
        op = self.op
        if op == "==":
            return value == self.values[0]
        if op == "=~":
            return value.lower() == self.values[0].lower()
        if op == "!=":
            return value != self.values[0]
        if op == "!~":
            return value.lower() != self.values[0].lower()
        if op == "in":
            return value in self.values
        if op == "in~":
            return value.lower() in {v.lower() for v in self.values}
        if op == "!in":
            return value not in self.values
        if op == "!in~":
            return value.lower() not in {v.lower() for v in self.values}
        raise AssertionError(op)

    def compile(self) -> Callable[[tuple[str, ...]], bool]:
        i = SCALAR_INDEX[self.column]
        op = self.op
        v0 = self.values[0]
        low = frozenset(v.lower() for v in self.values)
        vals = frozenset(self.values)
        if op == "==":
            return lambda s: s[i] == v0
        if op == "!=":
            return lambda s: s[i] != v0
        if op in ("=~", "in~"):
            return lambda s: s[i].lower() in low
        if op in ("!~", "!in~"):
            return lambda s: s[i].lower() not in low
        if op == "in":
            return lambda s: s[i] in vals
        return lambda s: s[i] not in vals


@dataclass
class Query:
    text: str
    table: str
    predicates: list[Predicate] = field(default_factory=list)
    project: tuple[str, ...] | None = None
    order: tuple[tuple[str, bool], ...] = ()  # (column, descending)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.project if self.project is not None else COLUMNS

    @property
    def column_indexes(self) -> tuple[int, ...]:
        return tuple(COLUMN_INDEX[c] for c in self.columns)

    def normalized(self) -> str:
        """Canonical text, used to key result sets and skip tokens."""
        parts = [self.table]
        for p in self.predicates:
            parts.append(f"where {p.column} {p.op} {p.values!r}")
        if self.order:
            parts.append(
                "order " + ",".join(f"{c} {'desc' if d else 'asc'}" for c, d in self.order)
            )
        if self.project is not None:
            parts.append("project " + ",".join(self.project))
        return " | ".join(parts)


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<op>!in~|in~|!in|==|=~|!=|!~)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[|(),.])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int
    value: str = ""


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        s = m.group()
        if kind == "ws":
            continue
        if kind == "other":
            raise KqlError(
                f"Unsupported character {s!r} at position {m.start()}",
                position=m.start(),
                near=s,
            )
        if kind == "ident" and s == "in":
            kind = "op"
        value = ""
        if kind == "string":
            body = s[1:-1]
            value = re.sub(r"\\(.)", lambda mm: _ESCAPES.get(mm.group(1), mm.group(1)), body)
        toks.append(_Tok(kind, s, m.start(), value))
    # a quote that never closed shows up as an 'other' match above; nothing else to do
    return toks


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self, expected: str) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise KqlError(
                f"Unexpected end of query, expected {expected}",
                position=len(self.text),
                near="<EOF>",
            )
        self.i += 1
        return tok

    def fail(self, tok: _Tok, expected: str) -> KqlError:
        return KqlError(
            f"Unsupported or invalid token {tok.text!r} at position {tok.pos}, expected {expected}",
            position=tok.pos,
            near=tok.text,
        )

    def expect_punct(self, p: str) -> None:
        tok = self.next(repr(p))
        if tok.kind != "punct" or tok.text != p:
            raise self.fail(tok, repr(p))

    def column(self, available: tuple[str, ...], *, scalar: bool) -> str:
        tok = self.next("a column name")
        if tok.kind != "ident":
            raise self.fail(tok, "a column name")
        nxt = self.peek()
        if nxt is not None and nxt.kind == "punct" and nxt.text == "(":
            raise KqlError(
                f"Functions are not supported by the simulator: {tok.text}(...)",
                position=tok.pos,
                near=tok.text,
            )
        if nxt is not None and nxt.kind == "punct" and nxt.text == ".":
            raise KqlError(
                f"Dotted paths are not supported by the simulator: {tok.text}.<...> (project the "
                "top-level column and read the value client-side)",
                position=nxt.pos,
                near=".",
            )
        name = tok.text
        if name not in available:
            raise KqlError(
                f"Failed to resolve column or scalar expression named '{name}'",
                kind="semantic",
                position=tok.pos,
                near=name,
            )
        if scalar and name not in SCALAR_INDEX:
            raise KqlError(
                f"Column '{name}' is dynamic: the simulator compares and sorts only the string "
                f"columns {', '.join(SCALAR_COLUMNS)}",
                kind="semantic",
                position=tok.pos,
                near=name,
            )
        return name

    def string(self) -> str:
        tok = self.next("a string literal")
        if tok.kind != "string":
            raise self.fail(tok, "a string literal")
        return tok.value

    def parse(self) -> Query:
        if not self.toks:
            raise KqlError("Query is empty", position=0, near="<EOF>")
        first = self.toks[0]
        if first.kind != "ident" or first.text.lower() in ("where", "project", "order", "sort"):
            # ARG treats a query that starts with an operator as a query on 'Resources'
            raise KqlError(
                "Table 'Resources' is not available in the simulator; use resourcecontainers, "
                "managedserviceresources or securityresources",
                kind="semantic",
                position=0,
                near=first.text,
            )
        self.i = 1
        table = first.text.lower()
        if table not in TABLES:
            raise KqlError(
                f"Table '{first.text}' is not available in the simulator; use "
                "resourcecontainers, managedserviceresources or securityresources",
                kind="semantic",
                position=0,
                near=first.text,
            )
        q = Query(self.text, table)
        available: tuple[str, ...] = COLUMNS
        while self.peek() is not None:
            self.expect_punct("|")
            op = self.next("an operator")
            word = op.text if op.kind == "ident" else ""
            if word == "where":
                while True:
                    col = self.column(available, scalar=True)
                    optok = self.next("a comparison operator")
                    if optok.kind != "op":
                        raise self.fail(optok, "==, =~, !=, !~, in, in~, !in or !in~")
                    if optok.text in COMPARISONS:
                        values: tuple[str, ...] = (self.string(),)
                    else:
                        self.expect_punct("(")
                        vals = [self.string()]
                        while True:
                            tok = self.next("',' or ')'")
                            if tok.kind == "punct" and tok.text == ")":
                                break
                            if tok.kind == "punct" and tok.text == ",":
                                vals.append(self.string())
                                continue
                            raise self.fail(tok, "',' or ')'")
                        values = tuple(vals)
                    q.predicates.append(Predicate(col, optok.text, values))
                    nxt = self.peek()
                    if nxt is not None and nxt.kind == "ident" and nxt.text == "and":
                        self.i += 1
                        continue
                    if nxt is not None and not (nxt.kind == "punct" and nxt.text == "|"):
                        raise self.fail(nxt, "'and' or '|'")
                    break
            elif word == "project":
                cols = [self.column(available, scalar=False)]
                while True:
                    nxt = self.peek()
                    if nxt is None or (nxt.kind == "punct" and nxt.text == "|"):
                        break
                    if nxt.kind == "punct" and nxt.text == ",":
                        self.i += 1
                        cols.append(self.column(available, scalar=False))
                        continue
                    raise self.fail(nxt, "',' or '|'")
                if len(set(cols)) != len(cols):
                    raise KqlError("A column is projected twice", position=op.pos, near="project")
                q.project = tuple(cols)
                available = q.project
            elif word in ("order", "sort"):
                tok = self.next("'by'")
                if not (tok.kind == "ident" and tok.text == "by"):
                    raise self.fail(tok, "'by'")
                keys = []
                while True:
                    col = self.column(available, scalar=True)
                    desc = True  # KQL's default sort order is descending
                    nxt = self.peek()
                    if nxt is not None and nxt.kind == "ident" and nxt.text in ("asc", "desc"):
                        desc = nxt.text == "desc"
                        self.i += 1
                        nxt = self.peek()
                    keys.append((col, desc))
                    if nxt is not None and nxt.kind == "punct" and nxt.text == ",":
                        self.i += 1
                        continue
                    if nxt is not None and not (nxt.kind == "punct" and nxt.text == "|"):
                        raise self.fail(nxt, "',' or '|'")
                    break
                q.order = tuple(keys)
            else:
                raise KqlError(
                    f"Operator '{op.text}' is not supported by the simulator (supported: where, "
                    "project, order by, sort by)",
                    position=op.pos,
                    near=op.text,
                )
        return q


def parse(text: str) -> Query:
    """Parse a query of the subset, or raise ``KqlError``."""
    if not isinstance(text, str):
        raise KqlError("Query must be a string")
    return _Parser(text).parse()
