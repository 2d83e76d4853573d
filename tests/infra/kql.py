"""A tiny evaluator for the subset of KQL (Kusto Query Language) the alert rules in infra/modules/alerts.bicep use,
so tests can run each rule's query over rows shaped exactly as Application Insights stores the app's telemetry.

Supported, with Kusto's semantics (Learn, KQL reference: https://learn.microsoft.com/kusto/query/):
  tables and `union (q), (q)`; `| where e`; `| summarize name = count() | countif(e), ...` (without `by`: always
  one row, even over no rows); `| project a, b`.
  Expressions: and, or, not(e), == != < <= > >=, `startswith` (case-insensitive), `in (...)` (case-sensitive),
  tostring(x), toint(x), ago(timespan), numbers, "strings", timespans (30m, 2h, 1d) and dotted column access
  into dynamic columns (customDimensions.outcome).
Anything else raises: a rule using an operator this file does not know cannot pass by accident.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

Row = dict[str, Any]
_TOKEN = re.compile(r'\s*(?:(?P<str>"[^"]*")|(?P<span>\d+(?:d|h|m|s)\b)|(?P<num>\d+)|(?P<op>==|!=|>=|<=|[<>()|,=])'
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*))")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


class KqlError(ValueError):
    pass


def tokenize(query: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    query = query.rstrip()
    while position < len(query):
        match = _TOKEN.match(query, position)
        if not match or match.end() == position:
            raise KqlError(f"cannot read the query at {query[position:position + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, query: str, tables: dict[str, list[Row]], now: datetime) -> None:
        self.tokens = tokenize(query)
        self.index = 0
        self.tables = tables
        self.now = now

    # ---- tokens
    def peek(self) -> str:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise KqlError(f"the query ends where {expected or 'more'} was expected")
        token = self.tokens[self.index]
        if expected is not None and token[1] != expected:
            raise KqlError(f"expected {expected!r}, found {token[1]!r}")
        self.index += 1
        return token

    # ---- queries
    def query(self) -> list[Row]:
        rows = self.source()
        while self.peek() == "|":
            self.take("|")
            rows = self.operator(rows)
        return rows

    def source(self) -> list[Row]:
        kind, name = self.take()
        if name == "union":
            rows = []
            while True:
                self.take("(")
                rows += self.query()
                self.take(")")
                if self.peek() != ",":
                    return rows
                self.take(",")
        if kind != "name" or name not in self.tables:
            raise KqlError(f"unknown table {name!r}")
        return list(self.tables[name])

    def operator(self, rows: list[Row]) -> list[Row]:
        _, name = self.take()
        if name == "where":
            condition = self.expression()
            return [row for row in rows if condition(row) is True]
        if name == "summarize":
            result: Row = {}
            while True:
                _, column = self.take()
                self.take("=")
                _, function = self.take()
                self.take("(")
                if function == "count":
                    result[column] = len(rows)
                elif function == "countif":
                    condition = self.expression()
                    result[column] = sum(1 for row in rows if condition(row) is True)
                else:
                    raise KqlError(f"unsupported aggregation {function}")
                self.take(")")
                if self.peek() != ",":
                    return [result]
                self.take(",")
        if name == "project":
            columns = [self.take()[1]]
            while self.peek() == ",":
                self.take(",")
                columns.append(self.take()[1])
            return [{column: row.get(column) for column in columns} for row in rows]
        raise KqlError(f"unsupported operator {name!r}")

    # ---- expressions (each compiles to a function of the row)
    def expression(self) -> Callable[[Row], Any]:
        left = self.conjunction()
        while self.peek() == "or":
            self.take("or")
            right = self.conjunction()
            left = _either(left, right)
        return left

    def conjunction(self) -> Callable[[Row], Any]:
        left = self.comparison()
        while self.peek() == "and":
            self.take("and")
            right = self.comparison()
            left = _both(left, right)
        return left

    def comparison(self) -> Callable[[Row], Any]:
        left = self.term()
        operator = self.peek()
        if operator in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            right = self.term()
            compare = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
                       "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}[operator]
            return lambda row: None if left(row) is None or right(row) is None else compare(left(row), right(row))
        if operator == "startswith":
            self.take()
            prefix = self.term()
            return lambda row: str(left(row) or "").lower().startswith(str(prefix(row)).lower())
        if operator == "in":
            self.take()
            self.take("(")
            options = [self.term()]
            while self.peek() == ",":
                self.take(",")
                options.append(self.term())
            self.take(")")
            return lambda row: any(left(row) == option(row) for option in options)
        return left

    def term(self) -> Callable[[Row], Any]:
        kind, text = self.take()
        if text == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if kind == "str":
            return lambda row: text[1:-1]
        if kind == "num":
            return lambda row: int(text)
        if kind == "span":
            span = timedelta(**{_UNITS[text[-1]]: int(text[:-1])})
            return lambda row: span
        if kind == "name" and self.peek() == "(":
            self.take("(")
            argument = self.expression()
            self.take(")")
            return self.function(text, argument)
        if kind == "name":
            return lambda row: column(row, text)
        raise KqlError(f"unexpected {text!r}")

    def function(self, name: str, argument: Callable[[Row], Any]) -> Callable[[Row], Any]:
        if name == "not":
            return lambda row: argument(row) is not True
        if name == "tostring":
            return lambda row: "" if argument(row) is None else str(argument(row))
        if name == "toint":
            def to_int(row: Row) -> int | None:
                try:
                    return int(argument(row))
                except (TypeError, ValueError):
                    return None
            return to_int
        if name == "ago":
            return lambda row: self.now - argument(row)
        raise KqlError(f"unsupported function {name}")


def _either(a: Callable[[Row], Any], b: Callable[[Row], Any]) -> Callable[[Row], Any]:
    return lambda row: a(row) is True or b(row) is True


def _both(a: Callable[[Row], Any], b: Callable[[Row], Any]) -> Callable[[Row], Any]:
    return lambda row: a(row) is True and b(row) is True


def column(row: Row, dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def run(query: str, tables: Mapping[str, Iterable[Row]], now: datetime, window: timedelta) -> list[Row]:
    """The rows the query returns when Azure Monitor runs it at `now` over the last `window` (the alert rule's
    windowSize is the query's time range: rows outside it are not seen)."""
    in_window = {name: [row for row in rows if now - window <= row["timestamp"] <= now]
                 for name, rows in tables.items()}
    parser = _Parser(query, in_window, now)
    rows = parser.query()
    if parser.index != len(parser.tokens):
        raise KqlError(f"unread query text from {parser.peek()!r}")
    return rows
