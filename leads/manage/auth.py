"""Who may use the management API and the console.

In Azure the routes are anonymous at the host and sit behind App Service Authentication (Microsoft Entra
sign-in), which passes the signed-in principal to the app in `X-MS-CLIENT-PRINCIPAL`: base64 of JSON
`{"auth_typ", "claims": [{"typ", "val"}], "name_typ", "role_typ"}` ("Work with user identities in Azure App
Service authentication", learn.microsoft.com/azure/app-service/configure-authentication-user-identities).
The platform strips that header from incoming requests only when authentication is on, so it is trusted only
when `WEBSITE_AUTH_ENABLED` is `True` where Azure hosts the app. App roles: `Leads.Reader` to read,
`Leads.Operator` to act (and read). Open without credentials only when proven local (leads/core/hosting.py: a
local host's own signal, no Azure sign) AND the request's Host is loopback; anywhere else, or where the
process cannot tell, every request without sign-in or the function key is refused.
A script sends a bearer token for the app registration (docs/deploy.md), or, while sign-in is off, uses the
function key on `/api/manage-key/...`: the host checks the key there (with sign-in on, App Service asks a
token there too)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from leads.core import hosting
from leads.core.errors import LeadsError

READER = "Leads.Reader"
OPERATOR = "Leads.Operator"
PRINCIPAL_HEADER = "x-ms-client-principal"
# The claim types a role arrives under: Entra's `roles`, or the principal's role_typ (usually this URI).
_ROLE_TYPES = frozenset({"roles", "role", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"})
TURN_ON_SIGN_IN = (
    "Sign-in is not configured for this app, so the management API and the console are closed. Deploy with "
    "enableOperatorSignIn=true (App Service Authentication with Microsoft Entra; docs/deploy.md) and give people "
    "the Leads.Reader or Leads.Operator app role, or call /api/manage-key/... with the function key.")
NOT_LOOPBACK = (
    "This app runs locally, and its console and management API answer only requests addressed to 127.0.0.1, "
    "localhost or [::1]: open http://127.0.0.1:7071/api/console (another address in the Host header, as a DNS "
    "rebinding page sends, is refused).")


class AuthError(LeadsError):
    """401 (`status`) when nobody is signed in, 403 when the signed-in principal lacks the role."""

    def __init__(self, explanation: str, status: int = 401) -> None:
        super().__init__(explanation)
        self.status = status


@dataclass(frozen=True)
class Caller:
    how: str  # "local", "key" or "sign-in"
    roles: frozenset[str]
    name: str = ""  # the signed-in person's name claim
    object_id: str = ""  # their Entra object id claim

    @property
    def who(self) -> str:
        """Who acted, for the audit trail: the signed-in name and object id, "function key" or "local"."""
        if self.how == "sign-in":
            return f"{self.name or 'signed-in user'} ({self.object_id or 'no object id'})"
        return "function key" if self.how == "key" else "local"


def identify(headers: Mapping[str, str], env: Mapping[str, str], via_key: bool) -> Caller:
    """Who is calling; raises AuthError(401) when nobody can be trusted. `headers` with lower-case names
    (`host` among them: the local mode opens only to a loopback Host)."""
    if via_key:
        return Caller("key", frozenset({READER, OPERATOR}))
    mode = hosting.api_mode(env)
    if mode == hosting.SIGN_IN:
        encoded = headers.get(PRINCIPAL_HEADER, "")
        if not encoded:
            raise AuthError("Sign in first: this request carries no signed-in user (App Service Authentication "
                            "is on, so open the console in a browser, or call /api/manage-key/... with the "
                            "function key).")
        return principal_caller(encoded)
    if mode == hosting.LOCAL_OPEN:
        if not hosting.is_loopback_host(headers.get("host")):
            raise AuthError(NOT_LOOPBACK)
        return Caller("local", frozenset({READER, OPERATOR}))
    raise AuthError(TURN_ON_SIGN_IN)


def request_mode(headers: Mapping[str, str], env: Mapping[str, str], via_key: bool) -> str:
    """The mode this request meets (leads/core/hosting.py), for status, doctor and the console."""
    mode = hosting.api_mode(env)
    if mode == hosting.LOCAL_OPEN and not hosting.is_loopback_host(headers.get("host")) and not via_key:
        return hosting.CLOSED
    return mode


_NAME_TYPES = ("name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "preferred_username")
_OBJECT_ID_TYPES = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")


def principal_caller(encoded: str) -> Caller:
    try:
        principal = json.loads(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
        claims = _claims(principal.get("claims") or [])
        role_type = str(principal.get("role_typ") or "")
        name_type = str(principal.get("name_typ") or "")
        roles = frozenset(str(c["val"]) for c in claims if c.get("typ") in _ROLE_TYPES | {role_type})
        name = next((str(c.get("val")) for t in (name_type, *_NAME_TYPES) for c in claims if c.get("typ") == t), "")
        oid = next((str(c.get("val")) for t in _OBJECT_ID_TYPES for c in claims if c.get("typ") == t), "")
        return Caller("sign-in", roles, name[:200], oid[:100])
    except (binascii.Error, ValueError, AttributeError, TypeError, KeyError, RecursionError):
        raise AuthError("The signed-in principal could not be read; sign in again.") from None


def _claims(claims: Iterable[object]) -> list[dict[str, object]]:
    return [c for c in claims if isinstance(c, dict)]


def authorize(caller: Caller, role: str) -> None:
    """Raises AuthError(403) unless `caller` has `role` (an operator may also read)."""
    granted = caller.roles | ({READER} if OPERATOR in caller.roles else set())
    if role not in granted:
        raise AuthError(f"You are signed in without the {role} app role this needs: ask an administrator to "
                        "assign it to you (Microsoft Entra admin center: Enterprise applications > this app > "
                        "Users and groups).", status=403)
