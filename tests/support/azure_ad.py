"""Fake Azure AD (Microsoft Entra) and fake Dataverse, real servers on loopback sockets.

Real msal talks to `FakeAzureAD`: msal only accepts an https authority, so it is served over TLS with a
self-signed certificate made here, trusted through REQUESTS_CA_BUNDLE (the `world` fixture sets it).
msal asks for `{authority}/v2.0/.well-known/openid-configuration` when the app is built (the tenant
errors come from there) and then POSTs the client-credentials form to the `token_endpoint` it was given.

Every canned answer copies a documented shape and names its document beside it. Error bodies are the
ones in docs/marketplace-leads.md §4.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.certificates import CertificateFiles, build, key_pem, self_signed
from tests.support.fake_http import FakeServer, Recorded, Reply

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0b9c2d5e-1f7a-4c3b-9e8d-6a5f4b3c2d1e"
CLIENT_SECRET = "Xk9~Qm2.Secret-Value-For-Tests_7Ab"  # recognisable: tests assert it never appears in output
APP_USER_ID = "3b1a5c7e-9d2f-4e6a-8b0c-1d3e5f7a9b2c"
BUSINESS_UNIT_ID = "38e0dbe4-131b-e111-ba7e-78e7d1620f5e"
ORGANIZATION_ID = "883278f5-07af-45eb-a0bc-3fea67caa544"
PRV_CREATE_LEAD_ID = "c2cbe3db-62c8-4661-9ac5-7691c83242f5"
TRACE_ID = "0000aaaa-11bb-cccc-dd22-eeeeee333333"
CORRELATION_ID = "aaaa0000-bb11-2222-33cc-444444dddddd"


# --- TLS --------------------------------------------------------------------------------------------

TlsFiles = CertificateFiles  # .certificate (PEM, also the CA bundle clients trust), .key


def make_self_signed(directory: Path) -> TlsFiles:
    """A certificate for 127.0.0.1 and localhost, valid one day. A TLS server certificate only: EC is fine
    (RSA is needed for the client certificate below, whose key msal uses to sign RS256 assertions)."""
    return self_signed(directory, names=("localhost",), addresses=("127.0.0.1",), stem="fake-aad")


class TlsFakeServer(FakeServer):
    """FakeServer over https (msal refuses an http authority)."""

    def __init__(self, tls: TlsFiles) -> None:
        super().__init__()
        self._server.socket = tls.server_context().wrap_socket(self._server.socket, server_side=True)

    @property
    def url(self) -> str:
        return super().url.replace("http://", "https://", 1)


# --- client certificate for the certificate credential -------------------------------------------------

@dataclass(frozen=True)
class ClientCertificate:
    pem: str  # private key + certificate, as LEADS_DYNAMICS_CLIENT_CERTIFICATE holds it
    thumbprint: str  # SHA-1 hex, upper case, as the Azure portal shows it
    public_key: Any


def make_client_certificate() -> ClientCertificate:
    from cryptography.hazmat.primitives import serialization

    certificate, key = build(names=(), addresses=(), key_type="rsa", common_name="marketplace-leads", days=30)
    pem = key_pem(key).decode() + certificate.public_bytes(serialization.Encoding.PEM).decode()
    thumbprint = hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ClientCertificate(pem, thumbprint, key.public_key())


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- Azure AD error bodies --------------------------------------------------------------------------

def aad_error(code: int, error: str, description: str) -> dict[str, Any]:
    """An Azure AD error body. Shape: "Microsoft Entra authentication and authorization error codes",
    section "Handling error codes in your application"
    (https://learn.microsoft.com/entra/identity-platform/reference-error-codes), and
    docs/marketplace-leads.md §4."""
    stamp = "2025-11-21 04:43:55Z"
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {TRACE_ID}\r\n"
                             f"Correlation ID: {CORRELATION_ID}\r\nTimestamp: {stamp}",
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": TRACE_ID,
        "correlation_id": CORRELATION_ID,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }


def tenant_not_found(tenant: str) -> Reply:
    # OpenID configuration of a tenant that does not exist: 400 with AADSTS90002. msal's authority.py
    # notes "Nonexist tenant would hit this path"; "invalid_tenant" as seen on login.microsoftonline.com.
    return Reply(400, aad_error(90002, "invalid_tenant",
                                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                                "and are signing into the correct cloud. Check with your subscription "
                                "administrator, this may happen if there are no active subscriptions for the "
                                "tenant."))


def tenant_malformed(tenant: str) -> Reply:
    # AADSTS900023 text as quoted in microsoft/intune-data-warehouse#15 (third-party report).
    return Reply(400, aad_error(900023, "invalid_request",
                                f"Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid "
                                "external domain."))


def application_not_found(client_id: str, tenant: str) -> Reply:
    # Text as in ALM4Dataverse/Rnwood.Dataverse.Data.PowerShell#23 (a real token endpoint answer).
    return Reply(400, aad_error(700016, "unauthorized_client",
                                f"Application with identifier '{client_id}' was not found in the directory "
                                f"'{tenant}'. This can happen if the application has not been installed by the "
                                "administrator of the tenant or consented to by any user in the tenant. You may "
                                "have sent your authentication request to the wrong tenant."))


def invalid_secret(client_id: str) -> Reply:
    return Reply(401, aad_error(7000215, "invalid_client",
                                "Invalid client secret provided. Ensure the secret being sent in the request is "
                                f"the client secret value, not the client secret ID, for a secret added to app "
                                f"'{client_id}'."))


def expired_secret(client_id: str) -> Reply:
    return Reply(401, aad_error(7000222, "invalid_client",
                                f"The provided client secret keys for app '{client_id}' are expired. Visit the "
                                "Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, "
                                "or consider using certificate credentials for added security: "
                                "https://aka.ms/certCreds."))


def bad_password() -> Reply:
    # What the older "Microsoft 365" user/password option gets (docs/marketplace-leads.md §4, invalid_grant).
    return Reply(400, aad_error(50126, "invalid_grant",
                                "Error validating credentials due to invalid username or password."))


def resource_not_found(resource: str, tenant: str) -> Reply:
    return Reply(400, aad_error(500011, "invalid_resource",
                                f"The resource principal named {resource} was not found in the tenant named "
                                f"{tenant}. This can happen if the application has not been installed by the "
                                "administrator of the tenant or consented to by any user in the tenant. You "
                                "might have sent your authentication request to the wrong tenant."))


# --- fake Azure AD ----------------------------------------------------------------------------------

@dataclass
class AppRegistration:
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    certificate: ClientCertificate | None = None


class FakeAzureAD:
    """One tenant's OpenID configuration and token endpoint. `resource` is the instance URL the tenant
    knows (the token's audience); `token_error` makes the token endpoint answer that error instead."""

    def __init__(self, tls: TlsFiles, *, tenant_id: str = TENANT_ID, resource: str = "",
                 app: AppRegistration | None = None) -> None:
        self.server = TlsFakeServer(tls)
        self.tenant_id = tenant_id
        self.resource = resource
        self.app = app or AppRegistration()
        self.token_error: Reply | None = None
        self.access_token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-access-token." + uuid.uuid4().hex
        self.server.on("GET", f"/{tenant_id}/v2.0/.well-known/openid-configuration", self._openid_configuration)
        self.server.on("POST", f"/{tenant_id}/oauth2/v2.0/token", self._token)

    @property
    def url(self) -> str:
        return self.server.url

    def unknown_tenant(self, tenant: str, reply: Reply) -> None:
        self.server.on("GET", f"/{tenant}/v2.0/.well-known/openid-configuration", reply)

    def token_requests(self) -> list[Recorded]:
        return self.server.sent("POST", f"/{self.tenant_id}/oauth2/v2.0/token")

    def _openid_configuration(self, _request: Recorded) -> Reply:
        # "OpenID Connect on the Microsoft identity platform", section "Find your app's OpenID
        # configuration document URI" (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc):
        # the document a v2.0 tenant serves, trimmed to what a client reads.
        base = f"{self.url}/{self.tenant_id}"
        return Reply(200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{self.url}/{self.tenant_id}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.url}/{self.tenant_id}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        })

    def _token(self, request: Recorded) -> Reply:
        if self.token_error is not None:
            return self.token_error
        form = {k: v[0] for k, v in request.form().items()}
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != self.app.client_id:
            return application_not_found(form.get("client_id", ""), self.tenant_id)
        if "client_secret" in form:
            if form["client_secret"] != self.app.client_secret:
                return invalid_secret(self.app.client_id)
        elif not self._assertion_valid(form):
            return Reply(401, aad_error(700027, "invalid_client",
                                        "Client assertion failed signature validation."))
        if form.get("scope") != f"{self.resource}/.default":
            return resource_not_found(form.get("scope", "").removesuffix("/.default"), self.tenant_id)
        # "Microsoft identity platform and the OAuth 2.0 client credentials flow", section "Successful
        # response example" (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
        return Reply(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                           "access_token": self.access_token})

    def _assertion_valid(self, form: dict[str, str]) -> bool:
        """A certificate credential: RS256 JWT whose x5t is the registered certificate's SHA-1 thumbprint,
        signed by its key ("Microsoft identity platform application authentication certificate
        credentials", https://learn.microsoft.com/entra/identity-platform/certificate-credentials)."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        certificate = self.app.certificate
        if certificate is None or form.get("client_assertion_type") != \
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return False
        try:
            header_b64, claims_b64, signature_b64 = form["client_assertion"].split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            certificate.public_key.verify(_b64url_decode(signature_b64), f"{header_b64}.{claims_b64}".encode(),
                                          padding.PKCS1v15(), hashes.SHA256())
        except (KeyError, ValueError, InvalidSignature):
            return False
        expected_x5t = base64.urlsafe_b64encode(bytes.fromhex(certificate.thumbprint)).decode().rstrip("=")
        return bool(header.get("alg") == "RS256" and str(header.get("x5t", "")).rstrip("=") == expected_x5t
                    and claims.get("iss") == self.app.client_id and claims.get("sub") == self.app.client_id
                    and claims.get("aud") == f"{self.url}/{self.tenant_id}/oauth2/v2.0/token")


# --- fake managed identity endpoint (App Service / Azure Functions) -----------------------------------

class FakeManagedIdentity:
    """The App Service identity endpoint (IDENTITY_ENDPOINT + IDENTITY_HEADER)."""

    path = "/msi/token"
    header = "9f8e7d6c-identity-header"

    def __init__(self, access_token: str) -> None:
        self.server = FakeServer()
        self.access_token = access_token
        self.server.on("GET", self.path, self._token)

    @property
    def endpoint(self) -> str:
        return f"{self.server.url}{self.path}"

    def _token(self, request: Recorded) -> Reply:
        if request.headers.get("X-IDENTITY-HEADER") != self.header:
            return Reply(401, {"statusCode": 401, "message": "Unauthorized"})
        # "How to use managed identities for App Service and Azure Functions", section "REST endpoint
        # reference" (https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference).
        return Reply(200, {
            "access_token": self.access_token,
            "expires_on": str(int(time.time()) + 3600),
            "resource": request.query.get("resource", [""])[0],
            "token_type": "Bearer",
            "client_id": request.query.get("client_id", ["5e6f7a8b-system-assigned"])[0],
        })


# --- fake Dataverse ---------------------------------------------------------------------------------

API = "/api/data/v9.2"
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def dataverse_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """Dataverse's error body, `{"error": {"code": ..., "message": ...}}` ("Compose HTTP requests and
    handle errors", https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors)."""
    return Reply(status, {"error": {"code": code, "message": message}},
                 {"OData-Version": "4.0", **(headers or {})})


def missing_create_lead() -> Reply:
    # docs/marketplace-leads.md §4: "Principal user (Id=..., type=8) is missing prvCreateLead privilege (Id=...)".
    return dataverse_error(403, "0x80040220", f"Principal user (Id={APP_USER_ID}, type=8) is missing "
                                              f"prvCreateLead privilege (Id={PRV_CREATE_LEAD_ID})")


def secured_leadsourcecode() -> Reply:
    # The FAQ's "no create permission for the attribute leadsourcecode in entity lead", with the code
    # docs/marketplace-leads.md §4 gives it. [GUESS on the exact wording.]
    return dataverse_error(403, "0x80040220", "The user does not have create permissions for attribute "
                                              "leadsourcecode in entity lead.")


def no_roles() -> Reply:
    # 0x80042F09 is the "no roles" code (docs/marketplace-leads.md §4); the message as the FAQ quotes it, with the
    # hr that is the same code as a signed integer.
    return dataverse_error(403, "0x80042F09", "SecLib::RetrievePrivilegeForUser failed - no roles are assigned "
                                              f"to user. Returned hr = -2147209463, User: {APP_USER_ID}")


def not_application_user() -> Reply:
    # What Dataverse answers an Azure AD app with no application user: 403 (microsoft/PowerPlatform-
    # DataverseServiceClient#5); code 0x80072560 as in MicrosoftDocs/power-platform#2124. [SEEN]
    return dataverse_error(403, "0x80072560", "The user is not a member of the organization.")


def invalid_property(name: str) -> Reply:
    # "Troubleshoot Dataverse Web API client errors", "Invalid property {property name} was found in entity"
    # (https://learn.microsoft.com/troubleshoot/power-platform/power-apps/dataverse/web-api-client-errors).
    return dataverse_error(400, "0x0", "An error occurred while validating input parameters: "
                                       f"Microsoft.Crm.CrmException: Invalid property '{name}' was found in entity "
                                       "'Microsoft.Dynamics.CRM.lead'. ---> Microsoft.OData.ODataException: Does "
                                       "not support untyped value in non-open type.")


def value_too_long(column: str, value: str) -> Reply:
    # 0x80044331 ValidationFailed (Dataverse web service error codes); the message quotes the value.
    return dataverse_error(400, "0x80044331", f"A validation error occurred. The value '{value}' of the "
                                              f"'{column}' attribute of the 'lead' entity exceeded the maximum "
                                              "allowed length of '50'.")


def throttled(retry_after: int) -> Reply:
    # "Service protection API limits", 429 with Retry-After in seconds
    # (https://learn.microsoft.com/power-apps/developer/data-platform/api-limits).
    return dataverse_error(429, "0x80072322", "Number of requests exceeded the limit of 6000 over time window "
                                              "of 300 seconds.", {"Retry-After": str(retry_after)})


@dataclass
class FakeDataverse:
    """A Dataverse environment that keeps the leads it is given. Answers only a request carrying the
    token Azure AD issued. `lead_reply`, `who_am_i_reply`, `privilege_reply` replace the normal answer."""

    access_token: str = ""
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    lead_reply: Reply | None = None
    who_am_i_reply: Reply | None = None
    privilege_reply: Reply | None = None

    def __post_init__(self) -> None:
        self.server = FakeServer()
        self.server.on_pattern("PATCH", rf"{API}/leads\(({GUID})\)", self._upsert_lead)
        self.server.on_pattern("GET", (
            rf"{API}/systemusers\(({GUID})\)/Microsoft\.Dynamics\.CRM\.RetrieveUserPrivilegeByPrivilegeName"
            r"\(PrivilegeName=(?:'|%27)(\w+)(?:'|%27)\)"), self._privilege)
        self.server.on("GET", f"{API}/WhoAmI", self._who_am_i)

    @property
    def url(self) -> str:
        return self.server.url

    def lead_requests(self) -> list[Recorded]:
        return [r for r in self.server.requests if r.method == "PATCH" and r.path.startswith(f"{API}/leads(")]

    def _authorized(self, request: Recorded) -> Reply | None:
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return Reply(401, b"", {"WWW-Authenticate": "Bearer error=invalid_token"})
        return None

    def _upsert_lead(self, request: Recorded, match: re.Match[str]) -> Reply:
        refused = self._authorized(request)
        if refused or self.lead_reply:
            return refused or self.lead_reply  # type: ignore[return-value]
        record_id = match.group(1)
        if record_id in self.records and request.headers.get("If-None-Match") == "*":
            # "Perform conditional operations using the Web API", "Prevent update in upsert": 412 and this body
            # (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api).
            return dataverse_error(412, "", "A record with matching key values already exists.")
        self.records[record_id] = request.json()
        # "Create a table row using the Web API", "Basic create": 204 No Content with the new row's URI in
        # OData-EntityId (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api).
        return Reply(204, None, {"OData-Version": "4.0", "OData-EntityId": f"{self.url}{API}/leads({record_id})"})

    def _who_am_i(self, request: Recorded) -> Reply:
        refused = self._authorized(request)
        if refused or self.who_am_i_reply:
            return refused or self.who_am_i_reply  # type: ignore[return-value]
        # "WhoAmI Function" / "Use Web API functions", example response
        # (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/use-web-api-functions).
        return Reply(200, {"@odata.context": f"{self.url}{API}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
                           "BusinessUnitId": BUSINESS_UNIT_ID, "UserId": APP_USER_ID,
                           "OrganizationId": ORGANIZATION_ID}, {"OData-Version": "4.0"})

    def _privilege(self, request: Recorded, match: re.Match[str]) -> Reply:
        refused = self._authorized(request)
        if refused or self.privilege_reply:
            return refused or self.privilege_reply  # type: ignore[return-value]
        if match.group(1) != APP_USER_ID:
            return dataverse_error(404, "0x80040217", f"systemuser With Id = {match.group(1)} Does Not Exist")
        # "Verifying access in code (Microsoft Dataverse)", "Check whether a user has a privilege", Web API
        # example response (MicrosoftDocs/powerapps-docs, developer/data-platform/security-access-checking).
        return Reply(200, {
            "@odata.context": f"{self.url}{API}/$metadata#Microsoft.Dynamics.CRM."
                              "RetrieveUserPrivilegeByPrivilegeNameResponse",
            "RolePrivileges": [{"Depth": "Global", "PrivilegeId": PRV_CREATE_LEAD_ID,
                                "BusinessUnitId": BUSINESS_UNIT_ID, "PrivilegeName": match.group(2)}],
        }, {"OData-Version": "4.0"})


def no_role_privileges() -> Reply:
    # Same document: an empty RolePrivileges collection means no role grants the privilege.
    context = "$metadata#Microsoft.Dynamics.CRM.RetrieveUserPrivilegeByPrivilegeNameResponse"
    return Reply(200, {"@odata.context": context, "RolePrivileges": []}, {"OData-Version": "4.0"})


def html_page(status: int) -> Reply:
    """What a web site that is not Dataverse answers."""
    return Reply(status, "<!DOCTYPE html><html><body><h1>Contoso</h1></body></html>",
                 {"Content-Type": "text/html; charset=utf-8"})


Scenario = Callable[["AzureWorld"], None]


@dataclass
class AzureWorld:
    """Fake Azure AD + fake Dataverse wired together, and the app settings that point at them."""

    aad: FakeAzureAD
    dataverse: FakeDataverse

    def env(self, **overrides: str) -> dict[str, str]:
        values = {
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "LEADS_DESTINATIONS": "dynamics",
            "LEADS_AUTHORITY_HOST": self.aad.url,
            "LEADS_DYNAMICS_URL": self.dataverse.url,
            "LEADS_DYNAMICS_TENANT_ID": self.aad.tenant_id,
            "LEADS_DYNAMICS_CLIENT_ID": self.aad.app.client_id,
            "LEADS_DYNAMICS_CLIENT_SECRET": self.aad.app.client_secret,
            "LEADS_HTTP_TIMEOUT": "5",
        }
        values.update(overrides)
        return {k: v for k, v in values.items() if v != ""}


@contextmanager
def running_world(tls: TlsFiles) -> Iterator[AzureWorld]:
    """Both fakes started; Azure AD knows the fake Dataverse URL as a resource, and Dataverse accepts the
    token Azure AD issues."""
    dataverse = FakeDataverse()
    aad = FakeAzureAD(tls, resource=dataverse.url)
    dataverse.access_token = aad.access_token
    with aad.server, dataverse.server:
        yield AzureWorld(aad, dataverse)


def open_world(tls: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureWorld]:
    """Body of the `world` fixture: `yield from open_world(tls, monkeypatch)`."""
    # msal uses requests, which trusts REQUESTS_CA_BUNDLE: the fake Azure AD's self-signed certificate.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.certificate))
    # Not on App Service here: no managed identity unless a test provides one.
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    with running_world(tls) as running:
        yield running


# --- fixtures (registered for every test by tests/conftest.py's pytest_plugins) ----------------------

@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """The fake Azure AD's certificate, made once per session."""
    return make_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def world(tls: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureWorld]:
    """Fake Azure AD and Dataverse running, the certificate trusted through REQUESTS_CA_BUNDLE."""
    yield from open_world(tls, monkeypatch)
