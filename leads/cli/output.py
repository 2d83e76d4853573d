"""Printing for the CLI: JSON for scripts, tables and progress bars (rich) for people. rich is imported only
here, inside the functions, so the Functions request path never loads it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

T = TypeVar("T")
_PIPE_WIDTH = 1000


def print_json(value: Any, out: TextIO | None = None) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False), file=out or sys.stdout)


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                out: TextIO | None = None) -> None:
    """A table; every cell printed as text (markup in a lead's value is shown, never interpreted)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    console(out).print(table)


def print_page(page: dict[str, Any], key: str, noun: str, columns: Sequence[str],
               cells: Callable[[dict[str, Any]], Sequence[Any]], as_json: bool) -> None:
    """One page of a paged listing: as JSON, or a table of `page[key]`, how many, and the next page's option."""
    if as_json:
        print_json(page)
        return
    items = page[key]
    print_table(None, columns, (cells(item) for item in items))
    more = page.get("continuation")
    print(f"{len(items)} {noun}(s)." + (f" More: --continuation '{more}'" if more else ""))


def print_pairs(pairs: Iterable[tuple[str, Any]], out: TextIO | None = None) -> None:
    """`name: value` lines, aligned; values printed as text."""
    items = list(pairs)
    width = max((len(name) for name, _ in items), default=0)
    stream = out or sys.stdout
    for name, value in items:
        print(f"{name + ':':<{width + 1}} {'' if value is None else printable(str(value))}", file=stream)


def printable(text: str) -> str:
    """Control and format characters written as escapes: a lead's value cannot move the cursor, recolour
    the terminal or reorder the line (ANSI escapes, bidi overrides)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def console(out: TextIO | None = None, stderr: bool = False) -> Any:
    from rich.console import Console

    stream = out or (sys.stderr if stderr else sys.stdout)
    # On a terminal rich fits the table to its width; into a pipe or a file, one line per row (for grep).
    width = None if stream.isatty() else _PIPE_WIDTH
    return Console(file=stream, width=width, highlight=False, markup=False, emoji=False)


def wants_progress(choice: bool | None) -> bool:
    """`--progress` / `--no-progress`, else a bar only when a person watches (stderr is a terminal)."""
    return sys.stderr.isatty() if choice is None else choice


@contextmanager
def progress(description: str, total: int | None, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A bar on stderr (so stdout stays clean for `--json` and `--output -`); yields `advance(n)`."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                          MofNCompleteColumn() if total is not None else TextColumn("{task.completed}"),
                          TimeElapsedColumn()]
    # Live refresh only on a terminal; elsewhere (forced with --progress) rich prints the final state once.
    with Progress(*columns, console=console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def tracked(items: Sequence[T], description: str, enabled: bool) -> Iterator[T]:
    with progress(description, len(items), enabled) as advance:
        for item in items:
            yield item
            advance(1)
