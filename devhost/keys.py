"""Function keys, checked as the Functions host checks them (the Azure-like mode: Flex mode, or DEVHOST_CHECK_KEYS).

Each rule names the host source it copies (github.com/Azure/azure-functions-host, src/WebJobs.Script.WebHost):
- Security/Authentication/Keys/AuthenticationLevelHandler.cs, GetAuthorizationKeyInfoAsync: the key is the
  `x-functions-key` header, else the `code` query parameter (the header wins); the first value is used; an
  empty value is no key.
- Security/KeyManagement/SecretManager.cs, GetAuthorizationLevelAsync: the master key is Admin level; a host
  function key (`default` in host.json secrets) is Function level for every function; a function's own key
  is Function level for that function only; any other value is Anonymous (no key).
- Security/Authorization/AuthUtility.cs, PrincipalHasAuthLevelClaim: Admin opens every level; otherwise the
  level must equal the route's (a FUNCTION route needs Function or Admin; an ADMIN route needs the master key).
- Middleware/FunctionInvocationMiddleware.cs, AuthenticateAndAuthorizeAsync: refused -> `UnauthorizedResult`,
  a 401 with an empty body, before the function runs.
- Controllers/FunctionsController.cs, Invoke (`POST admin/functions/{name}`): `[Authorize(Policy =
  AdminAuthLevel)]` (the master key, else 401), then `[FromBody] FunctionInvocation`: no JSON body -> 400.
Key values are compared in constant time, as Key.SecretValueEquals does.

The keys are random at each start and printed by `python -m devhost`, or fixed by settings: DEVHOST_MASTER_KEY,
DEVHOST_HOST_KEY (the host `default` key) and DEVHOST_FUNCTION_KEY_<FUNCTION NAME> (a function's `default` key).
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

ANONYMOUS, FUNCTION, ADMIN = "anonymous", "function", "admin"
KEY_HEADER = "x-functions-key"
KEY_PARAMETER = "code"


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def new_key() -> str:
    """Like the host's generated keys: URL-safe random text (SecretManager.GenerateSecret, 40 bytes)."""
    return secrets.token_urlsafe(40)


@dataclass(frozen=True)
class HostKeys:
    master: str
    host: str
    functions: dict[str, str] = field(default_factory=dict)  # function name (lower case) -> its default key

    @classmethod
    def from_settings(cls, env: Mapping[str, str], function_names: Iterable[str]) -> HostKeys:
        def setting(name: str) -> str:
            return env.get(name, "").strip() or new_key()

        return cls(setting("DEVHOST_MASTER_KEY"), setting("DEVHOST_HOST_KEY"),
                   {name.lower(): setting(f"DEVHOST_FUNCTION_KEY_{name.upper()}") for name in function_names})

    def as_settings(self) -> dict[str, str]:
        """The settings that give these same keys to another process (Flex mode's instances)."""
        return {"DEVHOST_MASTER_KEY": self.master, "DEVHOST_HOST_KEY": self.host,
                **{f"DEVHOST_FUNCTION_KEY_{name.upper()}": key for name, key in self.functions.items()}}

    def level_of(self, key: str, function_name: str | None) -> str:
        """SecretManager.GetAuthorizationLevelAsync: master, then host keys, then the function's own keys."""
        if not key:
            return ANONYMOUS
        if _equal(key, self.master):
            return ADMIN
        if _equal(key, self.host):
            return FUNCTION
        own = self.functions.get((function_name or "").lower())
        if own is not None and _equal(key, own):
            return FUNCTION
        return ANONYMOUS

    def allows(self, required: str, headers: Mapping[str, str], query: str, function_name: str | None) -> bool:
        """AuthUtility.PrincipalHasAuthLevelClaim for the key this request presents."""
        if required == ANONYMOUS:
            return True
        level = self.level_of(presented_key(headers, query), function_name)
        return level in (ADMIN, required)

    def describe(self, function_names: Iterable[str]) -> list[str]:
        lines = [f"  Keys are checked (as in Azure): master key {self.master}", f"    host key (default): {self.host}"]
        lines += [f"    {name} key: {self.functions[name.lower()]}" for name in function_names
                  if name.lower() in self.functions]
        return lines


def presented_key(headers: Mapping[str, str], query: str) -> str:
    """AuthenticationLevelHandler.GetAuthorizationKeyInfoAsync: the header first, else `code` (first value).
    `headers` has lower-case names; `query` is the raw query string."""
    if KEY_HEADER in headers:
        return headers[KEY_HEADER].split(",")[0].strip()
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name.lower() == KEY_PARAMETER:  # ASP.NET Core's query collection ignores case
            return value
    return ""


def auth_level(trigger: Mapping[str, Any]) -> str:
    """The binding's authLevel; the host's default for an HTTP trigger is Function (HttpTriggerAttribute)."""
    return str(trigger.get("authLevel") or FUNCTION).lower()


def key_for_path(keys: HostKeys, routes: Iterable[tuple[re.Pattern[str], str, str]], path: str) -> str:
    """The key a caller of `path` is given: a FUNCTION route's own function key, the master key for an ADMIN
    route, none for an ANONYMOUS one. `routes`: (compiled route pattern, function name, auth level)."""
    for pattern, name, level in routes:
        if pattern.match(path):
            if level == ADMIN:
                return keys.master
            return keys.functions.get(name.lower(), "") if level == FUNCTION else ""
    return ""


def with_key(url: str, key: str) -> str:
    """`url` with `code=<key>` added to its query (none added for an empty key)."""
    if not key:
        return url
    base, _, fragment = url.partition("#")
    joined = f"{base}{'&' if '?' in base else '?'}code={quote(key, safe='')}"
    return f"{joined}#{fragment}" if fragment else joined
