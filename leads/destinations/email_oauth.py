"""SMTP AUTH XOAUTH2 for Exchange Online: an app registration's token instead of a mailbox password.

Microsoft's "Authenticate an IMAP, POP or SMTP connection using OAuth"
(https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth):
the client-credentials token for `https://outlook.office365.com/.default`, sent as SASL XOAUTH2,
`base64("user=" + mailbox + "^Aauth=Bearer " + token + "^A^A")`. The app registration needs the
application permission SMTP.SendAsApp (Office 365 Exchange Online) with admin consent, a service principal
registered in Exchange Online (`New-ServicePrincipal`) and rights on the mailbox (`Add-MailboxPermission`).

The token comes from the Dynamics destination's msal code (client secret or certificate); its Azure AD
sentences are reworded here to name this transport's settings.
"""

from __future__ import annotations

from leads.core.errors import ConfigurationError, DestinationError
from leads.core.settings import DynamicsSettings, EmailSettings
from leads.destinations.dynamics_auth import AppRegistrationToken

EXCHANGE_RESOURCE = "https://outlook.office365.com"  # the token's audience: scope <it>/.default
EXCHANGE_SETUP = (
    "give the app registration the application permission SMTP.SendAsApp (Office 365 Exchange Online) with "
    "admin consent, register its service principal in Exchange Online (New-ServicePrincipal) and give it "
    "rights on the mailbox (Add-MailboxPermission), and make sure SMTP AUTH is on for the mailbox "
    "(Set-CASMailbox -SmtpClientAuthenticationDisabled $false)"
)


class ExchangeToken:
    """A cached client-credentials token for Exchange Online; errors name the LEADS_SMTP_OAUTH_* settings."""

    def __init__(self, settings: EmailSettings, timeout: float) -> None:
        self.settings = settings
        self._source = AppRegistrationToken(DynamicsSettings(
            url=EXCHANGE_RESOURCE,
            tenant_id=settings.oauth_tenant_id,
            client_id=settings.oauth_client_id,
            client_secret=settings.oauth_client_secret,
            client_certificate=settings.oauth_client_certificate,
            authority_host=settings.authority_host,
        ), timeout)

    def token(self) -> str:
        try:
            return self._source.token()
        except DestinationError as error:
            raise reworded(error) from None


def reworded(error: DestinationError) -> DestinationError:
    """The Dynamics sentence for the same Azure AD answer, naming this transport's settings."""
    text = error.explanation
    if "AADSTS500011" in text:
        return ConfigurationError(
            "Azure AD does not know Exchange Online in this tenant (AADSTS500011): the Directory (tenant) ID "
            "(LEADS_SMTP_OAUTH_TENANT_ID) must be the tenant whose Exchange Online holds the mailbox "
            "LEADS_EMAIL_FROM."
        )
    text = (text.replace("LEADS_DYNAMICS_CLIENT_SECRET", "LEADS_SMTP_OAUTH_CLIENT_SECRET")
            .replace("LEADS_DYNAMICS_CLIENT_CERTIFICATE", "LEADS_SMTP_OAUTH_CLIENT_CERTIFICATE")
            .replace("LEADS_DYNAMICS_TENANT_ID", "LEADS_SMTP_OAUTH_TENANT_ID")
            .replace("LEADS_DYNAMICS_CLIENT_ID", "LEADS_SMTP_OAUTH_CLIENT_ID")
            .replace("your Dynamics 365 environment", "the mailbox")
            .replace("Dynamics 365", "Exchange Online"))
    copy = type(error)(text)
    copy.__dict__.update({k: v for k, v in error.__dict__.items() if k != "explanation"})
    return copy


def xoauth2(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response, before smtplib's base64."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def settings_problem(settings: EmailSettings) -> str:
    missing = [name for name, value in (("LEADS_SMTP_OAUTH_TENANT_ID", settings.oauth_tenant_id),
                                        ("LEADS_SMTP_OAUTH_CLIENT_ID", settings.oauth_client_id)) if not value]
    if not (settings.oauth_client_secret or settings.oauth_client_certificate):
        missing.append("LEADS_SMTP_OAUTH_CLIENT_SECRET (or LEADS_SMTP_OAUTH_CLIENT_CERTIFICATE)")
    if missing:
        return (f"LEADS_EMAIL_TRANSPORT=smtp-oauth needs {' and '.join(missing)}: the app registration that may "
                "send as LEADS_EMAIL_FROM (Azure portal > App registrations).")
    if settings.security != "starttls":
        return ("Exchange Online takes SMTP AUTH with STARTTLS on port 587: set LEADS_SMTP_SECURITY=starttls "
                "with LEADS_EMAIL_TRANSPORT=smtp-oauth.")
    return ""


def refused_sentence(where: str, user: str, reply: str) -> ConfigurationError:
    """A 5xx answer to AUTH XOAUTH2. Microsoft's SMTP AUTH troubleshooting lists 535 5.7.139 with the reason
    in its text (SMTP AUTH disabled for the tenant or the mailbox) and 535 5.7.3 for a refused login."""
    if "SmtpClientAuthentication is disabled" in reply:
        return ConfigurationError(
            f"Exchange Online at {where} has SMTP AUTH turned off ({reply}): turn it on for the mailbox "
            f"{user} (Set-CASMailbox -Identity {user} -SmtpClientAuthenticationDisabled $false) or for the "
            "tenant (Set-TransportConfig -SmtpClientAuthenticationDisabled $false)."
        )
    return ConfigurationError(
        f"Exchange Online at {where} refused the OAuth token for mailbox {user} ({reply}): Azure AD issued "
        f"the token, so the app registration (LEADS_SMTP_OAUTH_CLIENT_ID) is right; {EXCHANGE_SETUP}. "
        "LEADS_EMAIL_FROM (or LEADS_SMTP_USERNAME) must be that mailbox."
    )
