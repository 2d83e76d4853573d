"""Who may use the management API and the console.

In Azure the routes are anonymous at the host and sit behind App Service Authentication (Microsoft Entra
sign-in), which passes the signed-in principal to the app in `X-MS-CLIENT-PRINCIPAL`: base64 of JSON
`{"auth_typ", "claims": [{"typ", "val"}], "name_typ", "role_typ"}` ("Work with user identities in Azure App
Service authentication", learn.microsoft.com/azure/app-service/configure-authentication-user-identities).
The platform strips that header from incoming requests only when authentication is on, so it is trusted only
when `WEBSITE_AUTH_ENABLED` is `True`. App roles: `Leads.Reader` to read, `Leads.Operator` to act (and read).
In Azure (`WEBSITE_INSTANCE_ID` set) without sign-in every request is refused; locally everything is open.
A script sends a bearer token for the app registration (docs/deploy.md), or, while sign-in is off, uses the
function key on `/api/manage-key/...`: the host checks the key there (with sign-in on, App Service asks a
token there too)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


class AuthError(LeadsError):
    """401 (`status`) when nobody is signed in, 403 when the signed-in principal lacks the role."""

    def __init__(self, explanation: str, status: int = 401) -> None:
        super().__init__(explanation)
        self.status = status


@dataclass(frozen=True)
class Caller:
    how: str  # "local", "key" or "sign-in"
    roles: frozenset[str]


def identify(headers: Mapping[str, str], env: Mapping[str, str], via_key: bool) -> Caller:
    """Who is calling; raises AuthError(401) when nobody can be trusted. `headers` with lower-case names."""
    if via_key:
        return Caller("key", frozenset({READER, OPERATOR}))
    if env.get("WEBSITE_AUTH_ENABLED", "").strip().lower() == "true":
        encoded = headers.get(PRINCIPAL_HEADER, "")
        if not encoded:
            raise AuthError("Sign in first: this request carries no signed-in user (App Service Authentication "
                            "is on, so open the console in a browser, or call /api/manage-key/... with the "
                            "function key).")
        return Caller("sign-in", roles_of(encoded))
    if env.get("WEBSITE_INSTANCE_ID", "").strip():
        raise AuthError(TURN_ON_SIGN_IN)
    return Caller("local", frozenset({READER, OPERATOR}))


def roles_of(encoded: str) -> frozenset[str]:
    try:
        principal = json.loads(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
        claims = principal.get("claims") or []
        role_type = str(principal.get("role_typ") or "")
        return frozenset(str(c["val"]) for c in _claims(claims) if c.get("typ") in _ROLE_TYPES | {role_type})
    except (binascii.Error, ValueError, AttributeError, TypeError, KeyError):
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
