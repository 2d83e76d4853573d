"""Tokens for Dynamics 365 (Dataverse): an app registration's client secret or certificate through msal,
or the app's managed identity through azure-identity. Azure AD's answers become one sentence each.

The sentences use the words of Partner Center's FAQ and of the Azure portal ("Directory (tenant) ID",
"Application (client) ID", "client secret") so a publisher can match them to what they see there.
Nothing here ever puts a secret, a certificate or a token into an exception or a log line.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from leads.core.errors import ConfigurationError, DestinationError, TransientDestinationError
from leads.core.settings import DynamicsSettings
from leads.core.urls import shown_host, shown_url

# The three settings a publisher copies from the Azure portal, named as the portal and the FAQ name them.
TENANT = "Directory (tenant) ID (LEADS_DYNAMICS_TENANT_ID)"
CLIENT = "Application (client) ID (LEADS_DYNAMICS_CLIENT_ID)"
CREDENTIAL = "client secret (LEADS_DYNAMICS_CLIENT_SECRET)"
INSTANCE = "instance URL (LEADS_DYNAMICS_URL)"
WHERE_TENANT = "Azure portal > Microsoft Entra ID > Overview"
WHERE_APP = "Azure portal > App registrations > your app > Overview"
WHERE_CREDENTIALS = "App registrations > your app > Certificates & secrets"

_AADSTS = re.compile(r"AADSTS(\d+)")


def aad_explanation(code: int, *, client_id: str = "", tenant_id: str = "", instance: str = "") -> DestinationError:
    """The error a person can act on for one Azure AD (Microsoft Entra) error code.

    Codes and their meaning: "Microsoft Entra authentication and authorization error codes"
    (https://learn.microsoft.com/entra/identity-platform/reference-error-codes) and the FAQ table in
    docs/marketplace-leads.md §4."""
    app = f" {client_id}" if client_id else ""
    tenant = f" {tenant_id!r}" if tenant_id else ""
    sentences: dict[int, str] = {
        90002: (
            f"Azure AD says tenant{tenant} was not found (AADSTS90002, the FAQ's 'tenant not found'): the "
            f"{TENANT} is not a directory. Copy the Directory (tenant) ID from {WHERE_TENANT} of the tenant "
            f"that holds your Dynamics 365 environment."
        ),
        900023: (
            f"Azure AD says tenant identifier{tenant} is not valid (AADSTS900023, the FAQ's 'tenant identifier "
            f"is not valid'): the {TENANT} must be a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47 (or "
            f"the tenant's domain). Copy it from {WHERE_TENANT}."
        ),
        700016: (
            f"Azure AD found no application{app} in this directory (AADSTS700016, the FAQ's 'application "
            f"not found in the directory'): the {CLIENT} is wrong, or the app registration lives in another "
            f"tenant than the Directory (tenant) ID. Copy the Application (client) ID from {WHERE_APP}, in "
            f"the same tenant as Dynamics 365."
        ),
        7000215: (
            f"Azure AD rejected the client secret of application{app} (AADSTS7000215, the FAQ's 'invalid "
            f"client secret'): the {CREDENTIAL} is wrong — often the secret's ID was copied instead of its Value. "
            f"Create a new client secret under {WHERE_CREDENTIALS}, copy its Value, and update the setting."
        ),
        7000222: (
            f"The client secret of application{app} has expired (AADSTS7000222). Create a new client secret "
            f"under {WHERE_CREDENTIALS}, put its Value in LEADS_DYNAMICS_CLIENT_SECRET, and note its expiry date "
            f"(or use the app's managed identity, which has no secret to expire)."
        ),
        50126: (
            "Azure AD rejected a user name and password (AADSTS50126, the FAQ's 'cannot log in to Dynamics "
            "CRM' with Microsoft 365 authentication). This app does not sign in as a licensed user: create an "
            f"app registration with a client secret, set the {TENANT}, {CLIENT} and {CREDENTIAL}, and add it to "
            "Dynamics 365 as an application user with a security role."
        ),
        500011: (
            f"Azure AD does not know {shown_url(instance) if instance else 'this Dynamics 365 instance'} in this "
            "tenant (AADSTS500011): "
            f"the {INSTANCE} is wrong, or the environment belongs to another tenant than the Directory "
            "(tenant) ID. Copy the Environment URL from Power Platform admin center > Environments > your "
            "environment."
        ),
        700027: (
            f"Azure AD rejected the certificate of application{app} (AADSTS700027): upload the certificate "
            f"(the public part of LEADS_DYNAMICS_CLIENT_CERTIFICATE) under {WHERE_CREDENTIALS} > Certificates, "
            "or check that the setting holds the matching private key."
        ),
        700024: (
            "Azure AD rejected the certificate assertion as outside its validity period (AADSTS700024): check "
            "the app's clock and the certificate's validity dates."
        ),
        7000229: (
            f"Application{app} has no service principal in this tenant (AADSTS7000229): the app registration "
            "is in another tenant, or was never used there. Register the app in the same tenant as "
            "Dynamics 365."
        ),
        50034: (
            f"Azure AD does not know this directory (AADSTS50034): check the {TENANT}."
        ),
    }
    sentence = sentences.get(code)
    if sentence is None:
        return ConfigurationError(
            f"Azure AD refused the token request (AADSTS{code}): see "
            f"https://login.microsoftonline.com/error?code={code}, then check the {TENANT}, {CLIENT} and "
            f"{CREDENTIAL}."
        )
    return ConfigurationError(sentence)


def aad_error_from_result(result: dict[str, Any], *, client_id: str, tenant_id: str,
                          instance: str) -> DestinationError:
    """msal's error dict (`error`, `error_description`, `error_codes`) -> one typed error."""
    codes = result.get("error_codes") or []
    code = codes[0] if codes and isinstance(codes[0], int) else None
    if code is None:
        match = _AADSTS.search(str(result.get("error_description", "")))
        code = int(match.group(1)) if match else None
    error = str(result.get("error", ""))
    if error in ("temporarily_unavailable", "server_error") or (code is not None and code in (90033, 50196)):
        return TransientDestinationError(
            f"Azure AD is temporarily unable to issue a token ({error or code}); will retry."
        )
    if code is None:
        return ConfigurationError(
            f"Azure AD refused the token request ({error or 'no error code'}): check the {TENANT}, {CLIENT} "
            f"and {CREDENTIAL}."
        )
    return aad_explanation(code, client_id=client_id, tenant_id=tenant_id, instance=instance)


def aad_code_in(exc: BaseException) -> int | None:
    """The AADSTS code in an exception or the one it was raised from (msal's tenant discovery raises a
    ValueError whose context holds Azure AD's body)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        match = _AADSTS.search(str(seen))
        if match:
            return int(match.group(1))
        seen = seen.__cause__ or seen.__context__
    return None


@dataclass(frozen=True)
class Certificate:
    private_key_pem: str
    thumbprint: str  # SHA-1, hex upper case: what the Azure portal shows under Certificates


def load_certificate(value: str) -> Certificate:
    """LEADS_DYNAMICS_CLIENT_CERTIFICATE: PEM text, or the path of a PEM file, holding the private key and
    the certificate. The thumbprint is computed here: it is what Azure AD matches against the certificates
    uploaded to the app registration."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    text = value
    if "-----BEGIN" not in value:
        path = Path(value)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise ConfigurationError(
                "LEADS_DYNAMICS_CLIENT_CERTIFICATE is neither PEM text nor a readable PEM file: give the PEM "
                "(private key and certificate) itself, or the path of a file holding it."
            ) from None
    data = text.encode("utf-8")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigurationError(
            "LEADS_DYNAMICS_CLIENT_CERTIFICATE holds no unencrypted private key: export the certificate with "
            "its private key as PEM (for example `openssl pkcs12 -in cert.pfx -nodes`)."
        ) from None
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigurationError(
            "LEADS_DYNAMICS_CLIENT_CERTIFICATE holds a private key but no certificate: put both in the PEM "
            "(-----BEGIN CERTIFICATE----- after the key)."
        ) from None
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    # SHA-1 is what the portal displays and what `x5t` carries; Azure AD accepts it for client assertions.
    thumbprint = hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER), usedforsecurity=False)
    return Certificate(key_pem, thumbprint.hexdigest().upper())


class TokenSource(Protocol):
    def token(self) -> str:
        """A bearer token for the instance. Raises ConfigurationError or TransientDestinationError."""
        ...

    def describe(self) -> str:
        """Which credential is used, for the doctor (never the secret itself)."""
        ...


def scope_for(instance_url: str) -> str:
    parts = urlsplit(instance_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


class AppRegistrationToken:
    """Client credentials of an app registration (client secret or certificate), through msal.

    One msal app per destination object: its token cache returns the same token until shortly before it
    expires, so a token is fetched about once an hour, not once per lead."""

    def __init__(self, settings: DynamicsSettings, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout
        self.scope = scope_for(settings.url)
        self.uses_certificate = bool(settings.client_certificate and not settings.client_secret)
        self._certificate: Certificate | None = None
        self._app: Any = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        if self._certificate:
            return (f"the certificate with thumbprint {self._certificate.thumbprint} of application "
                    f"{self.settings.client_id}")
        if self.uses_certificate:
            return f"the certificate of application {self.settings.client_id}"
        return f"the client secret of application {self.settings.client_id}"

    def _credential(self) -> str | dict[str, str]:
        if self.uses_certificate:
            # Read when first needed, so a bad certificate is reported by deliver() and the doctor, with
            # the fix, instead of stopping the app from starting.
            self._certificate = self._certificate or load_certificate(self.settings.client_certificate)
            return {"private_key": self._certificate.private_key_pem, "thumbprint": self._certificate.thumbprint}
        return self.settings.client_secret

    def _check_settings(self) -> None:
        if not self.settings.tenant_id:
            raise ConfigurationError(f"The {TENANT} is not set: copy it from {WHERE_TENANT}.")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", self.settings.tenant_id):
            # Would not even make a valid authority URL; Azure AD's own word for it is AADSTS900023.
            raise aad_explanation(900023, tenant_id=self.settings.tenant_id)
        if not self.settings.client_id:
            raise ConfigurationError(f"The {CLIENT} is not set: copy it from {WHERE_APP}.")

    def _application(self) -> Any:
        import msal
        import requests

        with self._lock:
            if self._app is not None:
                return self._app
            self._check_settings()
            authority = f"{self.settings.authority_host.rstrip('/')}/{self.settings.tenant_id}"
            try:
                # instance_discovery=False: the authority comes from LEADS_AUTHORITY_HOST, an admin setting.
                # Discovery would validate hosts msal does not know against login.microsoftonline.com, which
                # fails for a national cloud without internet access and for a local test authority.
                # Constructing the app fetches the tenant's OpenID configuration: tenant errors show here.
                app = msal.ConfidentialClientApplication(
                    self.settings.client_id,
                    client_credential=self._credential(),
                    authority=authority,
                    instance_discovery=False,
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                raise _unreachable(self.settings.authority_host, exc) from None
            except ValueError as exc:
                code = aad_code_in(exc)
                if code is not None:
                    raise aad_explanation(code, client_id=self.settings.client_id,
                                          tenant_id=self.settings.tenant_id, instance=self.settings.url) from None
                raise ConfigurationError(
                    f"Azure AD at {shown_host(self.settings.authority_host)} does not know the tenant "
                    f"{self.settings.tenant_id!r}: check the {TENANT} ({WHERE_TENANT}) and "
                    "LEADS_AUTHORITY_HOST."
                ) from None
            self._app = app
            return app

    def token(self) -> str:
        import requests

        app = self._application()
        try:
            result = app.acquire_token_for_client(scopes=[self.scope])
        except requests.RequestException as exc:
            raise _unreachable(self.settings.authority_host, exc) from None
        except ValueError:
            raise TransientDestinationError("Azure AD answered the token request with something that is not "
                                            "JSON; will retry.") from None
        if isinstance(result, dict) and result.get("access_token"):
            return str(result["access_token"])
        raise aad_error_from_result(result or {}, client_id=self.settings.client_id,
                                    tenant_id=self.settings.tenant_id, instance=self.settings.url)


class ManagedIdentityToken:
    """The Function App's managed identity (no secret anywhere), through azure-identity. With
    LEADS_DYNAMICS_CLIENT_ID set, that user-assigned identity; otherwise the system-assigned one."""

    def __init__(self, settings: DynamicsSettings) -> None:
        self.client_id = settings.client_id or None
        self.instance = settings.url
        self.scope = scope_for(settings.url)
        self._credential: Any = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        which = f"user-assigned, client id {self.client_id}" if self.client_id else "system-assigned"
        return f"the app's managed identity ({which})"

    def token(self) -> str:
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
        from azure.identity import CredentialUnavailableError, ManagedIdentityCredential

        with self._lock:
            if self._credential is None:
                # azure-identity caches the token (through msal) until shortly before it expires.
                self._credential = ManagedIdentityCredential(client_id=self.client_id)
        try:
            return str(self._credential.get_token(self.scope).token)
        except CredentialUnavailableError:
            raise ConfigurationError(
                "No managed identity is available to this app, and no client secret or certificate is set: "
                "turn on the Function App's identity (Identity > System assigned > On) and add it to Dynamics "
                "365 as an application user, or set LEADS_DYNAMICS_TENANT_ID, LEADS_DYNAMICS_CLIENT_ID and "
                "LEADS_DYNAMICS_CLIENT_SECRET."
            ) from None
        except ServiceRequestError:
            raise TransientDestinationError("The managed identity endpoint did not answer; will retry.") from None
        except ClientAuthenticationError as exc:
            code = aad_code_in(exc)
            if code is not None:
                raise aad_explanation(code, client_id=self.client_id or "", instance=self.instance) from None
            raise ConfigurationError(
                f"The app's managed identity could not get a token for {shown_url(self.instance)}: "
                "check that the identity is turned on and, for a user-assigned identity, that "
                "LEADS_DYNAMICS_CLIENT_ID is its client id."
            ) from None


def _unreachable(authority_host: str, exc: BaseException) -> TransientDestinationError:
    import requests

    host = shown_host(authority_host)
    if isinstance(exc, requests.Timeout):
        return TransientDestinationError(f"Azure AD at {host} did not answer in time; will retry.")
    return TransientDestinationError(
        f"Could not connect to Azure AD at {host}; will retry. If this persists, check LEADS_AUTHORITY_HOST and "
        "that the app can reach it."
    )


def token_source(settings: DynamicsSettings, timeout: float) -> TokenSource:
    """A client secret wins over a certificate; with neither, the managed identity."""
    if settings.client_secret or settings.client_certificate:
        return AppRegistrationToken(settings, timeout)
    return ManagedIdentityToken(settings)
