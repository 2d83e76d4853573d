"""HTTP trigger routes as the host serves them: `/{routePrefix}/{route}`, case-insensitive.

Templates follow ASP.NET Core routing, which the host uses: `{name}` binds a segment to route_params,
`{name?}` may be missing, `{*name}` takes the rest of the path, `{id:int}` / `{name:alpha}` constrain a
segment (other constraints are accepted and not checked). No `route` means the function's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from devhost.invoke import IndexedFunction

_PARAMETER = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+)(?:\([^)]*\))?)?(\??)\}")
_CONSTRAINTS = {"int": r"-?\d+", "alpha": r"[A-Za-z]+", "bool": r"(?i:true|false)"}


@dataclass(frozen=True)
class Route:
    function: IndexedFunction
    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str] | None  # None: every method (the binding lists none)

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


def _segment_pattern(segment: str) -> str:
    pieces: list[str] = []
    position = 0
    for match in _PARAMETER.finditer(segment):
        pieces.append(re.escape(segment[position:match.start()]))
        catch_all, name, constraint, optional = match.groups()
        body = ".*" if catch_all else _CONSTRAINTS.get(constraint or "", "[^/]+")
        pieces.append(f"(?P<{name}>{body}){'?' if optional else ''}")
        position = match.end()
    pieces.append(re.escape(segment[position:]))
    return "".join(pieces)


def compile_template(route_prefix: str, template: str) -> re.Pattern[str]:
    segments = [s for s in f"{route_prefix}/{template}".split("/") if s]
    pattern = ""
    for segment in segments:
        optional = bool(_PARAMETER.fullmatch(segment)) and (segment.endswith("?}") or segment.startswith("{*"))
        piece = "/" + _segment_pattern(segment)
        pattern += f"(?:{piece})?" if optional else piece
    return re.compile(f"^{pattern or '/'}/?$", re.IGNORECASE)


def build_routes(functions: list[IndexedFunction], route_prefix: str) -> list[Route]:
    routes = []
    for function in functions:
        trigger = function.trigger
        if trigger.get("type") != "httpTrigger":
            continue
        template = str(trigger.get("route") or function.name).strip("/")
        methods = trigger.get("methods")
        routes.append(Route(function, template, compile_template(route_prefix, template),
                            frozenset(m.upper() for m in methods) if methods else None))
    # Literal routes win over parameterised ones, as in ASP.NET Core routing.
    routes.sort(key=lambda route: route.template.count("{"))
    return routes


def match_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for this path and method. A known path with a method the binding does not list is not
    found, like the host (404, not 405: Azure/azure-functions-host#10098)."""
    for route in routes:
        found = route.pattern.match(path)
        if found and route.allows(method):
            return route, {k: v for k, v in found.groupdict().items() if v is not None}
    return None
