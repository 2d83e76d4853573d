"""The import graph of leads/ and devhost/ as grimp (import-linter's graph library) reads it: every import
statement, a lazy one inside a function included. `python -m tests.support.import_graph` prints each cycle
(one line of modules) and the longest chain of imports, and exits 1 if there is a cycle."""

from __future__ import annotations

import sys
from collections.abc import Iterable

import grimp

PACKAGES = ("leads", "devhost")


def import_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def longest_chain(edges: dict[str, set[str]]) -> list[str]:
    """The longest path of imports (the graph must be acyclic)."""
    best: dict[str, list[str]] = {}

    def walk(module: str) -> list[str]:
        if module not in best:
            tails = [walk(child) for child in sorted(edges.get(module, ()))]
            best[module] = [module, *max(tails, key=len, default=[])]
        return best[module]

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges) + 100))
    return max((walk(m) for m in sorted(edges)), key=len, default=[])


def main(argv: Iterable[str] = ()) -> int:
    edges = import_graph()
    found = cycles(edges)
    for cycle in found:
        print("cycle: " + " <-> ".join(cycle))
    if not found:
        chain = longest_chain(edges)
        print(f"{len(edges)} modules, no cycle; longest chain ({len(chain)} modules): " + " -> ".join(chain))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
