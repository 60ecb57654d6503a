"""The curator's search language.

Whitespace-separated terms, all of which must hold:
    tag:intersection     has the tag              -tag:night        lacks the tag
    source:av2           from that source (several source: terms mean any of them); -source:X excludes
    log:ID               from that log (several mean any of them)
    qa>=0.8              QA score bound (>=, >, <=, <, =); qa:none matches unscored scenarios
    duration>=5          window length bound in seconds
    status:retired       active (default), retired or any
The empty query matches every active scenario.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from andon.errors import BadInput

_COMPARE = re.compile(r"^(qa|duration)(>=|<=|>|<|=)(.+)$")
OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "=": operator.eq,
}
STATUSES = ("active", "retired", "any")
HELP = ("terms: tag:X, -tag:X, source:X, -source:X, log:ID, qa>=0.8 (>=, >, <=, <, =), qa:none, "
        "duration>=S, status:active|retired|any")


@dataclass(frozen=True, slots=True)
class Query:
    tags_all: tuple[str, ...] = ()
    tags_none: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    not_sources: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()
    qa_bounds: tuple[tuple[str, float], ...] = ()
    qa_unscored: bool = False
    duration_bounds_s: tuple[tuple[str, float], ...] = ()
    status: str = "active"


def parse_query(text: str) -> Query:
    """Parse a query; a bad term raises BadInput naming it and listing the valid forms."""
    fields: dict[str, list] = {k: [] for k in ("tags_all", "tags_none", "sources", "not_sources", "logs",
                                               "qa_bounds", "duration_bounds_s")}
    status = "active"
    qa_unscored = False
    for term in text.split():
        negated = term.startswith("-")
        body = term[1:] if negated else term
        compare = _COMPARE.match(body)
        if compare and not negated:
            key, op, raw = compare.groups()
            try:
                value = float(raw)
            except ValueError:
                raise BadInput(f"query term {term!r}: {raw!r} is not a number") from None
            if not math.isfinite(value):
                raise BadInput(f"query term {term!r}: the bound must be finite")
            fields["qa_bounds" if key == "qa" else "duration_bounds_s"].append((op, value))
            continue
        key, sep, value = body.partition(":")
        if not sep or not value:
            raise BadInput(f"query term {term!r} is not understood; {HELP}")
        if key == "tag":
            fields["tags_none" if negated else "tags_all"].append(value)
        elif key == "source":
            fields["not_sources" if negated else "sources"].append(value)
        elif key == "log" and not negated:
            fields["logs"].append(value)
        elif key == "qa" and value == "none" and not negated:
            qa_unscored = True
        elif key == "status" and not negated:
            if value not in STATUSES:
                raise BadInput(f"query term {term!r}: status must be one of {', '.join(STATUSES)}")
            status = value
        else:
            raise BadInput(f"query term {term!r} is not understood; {HELP}")
    return Query(**{k: tuple(v) for k, v in fields.items()}, qa_unscored=qa_unscored, status=status)
