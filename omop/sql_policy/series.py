"""Bounds for ``generate_series``: the only way a cohort query can make rows out of nothing.

A researcher may need a calendar of months or a range of ages, but an unbounded series is a cheap way to
exhaust the trust's database. So the arguments must be literals (integers, or dates/timestamps with a
literal interval step) and the number of rows they describe must not exceed the policy's limit.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from sqlglot import exp

_UNIT_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 28 * 86400,  # the shortest month: the bound must never underestimate the row count
    "year": 365 * 86400,
}
_STEP = re.compile(r"^\s*(\d{1,9})\s*([a-z]+?)s?\s*$")
_DATE_TYPES = {exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ}


class SeriesError(ValueError):
    """The series is not bounded by literals within the limit (message says why)."""


def _strip(node: exp.Expression | None) -> exp.Expression | None:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def literal_int(node: exp.Expression | None) -> int | None:
    """The value of an integer literal (optionally negated or parenthesised), else None."""
    node = _strip(node)
    sign = 1
    if isinstance(node, exp.Neg):
        sign, node = -1, _strip(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        text = str(node.this)
        if text.isdigit():
            return sign * int(text)
    return None


def _literal_datetime(node: exp.Expression | None) -> datetime | None:
    node = _strip(node)
    if not isinstance(node, exp.Cast):
        return None
    to = node.args.get("to")
    inner = _strip(node.this)
    if not isinstance(to, exp.DataType) or to.this not in _DATE_TYPES:
        return None
    if not isinstance(inner, exp.Literal) or not inner.is_string:
        return None
    text = str(inner.this).strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time())
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return None


def _step_seconds(node: exp.Expression | None) -> int | None:
    node = _strip(node)
    text: str | None = None
    if isinstance(node, exp.Interval):
        value = _strip(node.this)
        unit = node.args.get("unit")
        if isinstance(value, exp.Literal):
            text = str(value.this) + (" " + str(unit.name) if unit is not None else "")
    elif isinstance(node, exp.Cast):
        to = node.args.get("to")
        value = _strip(node.this)
        if isinstance(to, exp.DataType) and to.this == exp.DataType.Type.INTERVAL:
            if isinstance(value, exp.Literal) and value.is_string:
                text = str(value.this)
    if text is None:
        return None
    match = _STEP.match(text.lower())
    if match is None or match.group(2) not in _UNIT_SECONDS:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def series_rows(node: exp.Expression) -> int:
    """How many rows this ``generate_series`` call produces at most; SeriesError if not literal-bounded."""
    start, end, step = node.args.get("start"), node.args.get("end"), node.args.get("step")
    if node.args.get("is_end_exclusive"):
        raise SeriesError("generate_series must use the PostgreSQL form generate_series(start, stop[, step])")
    int_start, int_end = literal_int(start), literal_int(end)
    if int_start is not None and int_end is not None:
        int_step = 1 if step is None else literal_int(step)
        if int_step is None:
            raise SeriesError("the step of an integer generate_series must be an integer literal")
        if int_step == 0:
            raise SeriesError("the step of generate_series cannot be zero")
        span = int_end - int_start
        return 0 if span * int_step < 0 else span // int_step + 1
    dt_start, dt_end = _literal_datetime(start), _literal_datetime(end)
    if dt_start is not None and dt_end is not None:
        seconds = _step_seconds(step)
        if seconds is None or seconds == 0:
            raise SeriesError(
                "a date generate_series needs a literal positive step such as INTERVAL '1 month' "
                "(units: second, minute, hour, day, week, month, year)"
            )
        span_seconds = int((dt_end - dt_start).total_seconds())
        return 0 if span_seconds < 0 else span_seconds // seconds + 1
    raise SeriesError(
        "generate_series arguments must be literals: integers, "
        "or DATE/TIMESTAMP literals with an INTERVAL step"
    )
