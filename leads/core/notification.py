"""The notification e-mail for one lead: plain Python, no I/O.

What it carries and why:
- At a glance: offer, action and what it means, company, country, test and .edu flags, when it arrived, lead
  id, LeadSource as sent, campaign parameters. Company and country describe an organisation, not a person.
- No personal data unless LEADS_EMAIL_INCLUDE_PII=true: name, e-mail address, phone, job title and the
  Description. The FAQ's rule is that lead data does not travel by unsecured e-mail (docs/marketplace-leads.md
  §2), and SMTP between mail servers is not reliably encrypted. The Description is withheld too because on
  "Contact me" leads it holds the customer's own notes, which routinely contain a name, a phone number or an
  address. Campaign parameters parsed out of it (mktcmpid, partnerid) are marketing attribution and are
  always shown.
- Lead fields are untrusted text. Header values are single lines with no encoded-word syntax (so no field
  can add a header, see `_header_text`); the HTML part escapes every value; every part is UTF-8.
- Message-ID is derived from the lead id, so a second send of the same lead (a retry after a lost reply, a
  replay) is recognisable by mail clients and by the people reading it.
"""

from __future__ import annotations

import email.utils
import html
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.message import EmailMessage
from email.policy import EmailPolicy

from leads.core.model import ACTION_MEANINGS, Lead, StoredLead, utcnow
from leads.core.settings import EmailSettings


class _NotificationPolicy(EmailPolicy):
    """The SMTP policy, except that a non-ASCII Subject is written as encoded words from end to end.

    The standard folder (Python 3.11) can fold at a space that separates two encoded words, e.g.
    `=?utf-8?q?..._no_action_code?=<CRLF>  =?utf-8?b?4oCUIMKh?=`; whitespace between encoded words is not
    text (RFC 2047 §6.2), so readers show "no action code— ¡". Encoding the whole value keeps every
    character, spaces included, inside encoded words of at most 75 characters. Found by the property test
    in tests/core/test_notification.py."""

    def fold(self, name: str, value: str) -> str:
        if name.lower() == "subject" and not str(value).isascii():
            encoded: str = Header(str(value), charset="utf-8", header_name=name).encode(
                linesep=self.linesep, maxlinelen=min(self.max_line_length or 76, 76)
            )
            return f"{name}: {encoded}{self.linesep}"
        folded: str = super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() == "subject" and not str(value).isascii():
            return self.fold(name, value).encode("ascii")
        folded: bytes = super().fold_binary(name, value)
        return folded


# SMTP: CRLF line endings, as sent on the wire. 7bit: bodies are quoted-printable or base64, never raw 8-bit,
# so the message is valid on a server that announces neither 8BITMIME nor SMTPUTF8.
POLICY = _NotificationPolicy(linesep="\r\n", cte_type="7bit")
FALLBACK_MESSAGE_ID_DOMAIN = "leads.local"
SUBJECT_PART_MAX = 80  # characters of each lead field in the subject; the whole lead is in the body
NOT_GIVEN = "(not given)"

# Characters that end a line somewhere (str.splitlines, mail clients) or are not text: never in a header.
_LINE_BREAKING_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
# Explicit bidi embeddings, overrides and isolates can make a subject display as something else.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CAMPAIGN_ONLY = re.compile(r"\s*campaigns?\s*:?\s*", re.IGNORECASE)
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9._-]")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


def _valid_text(text: str) -> str:
    """Lone surrogates (JSON allows `"\\ud800"`) cannot be encoded as UTF-8: show them as U+FFFD."""
    return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)


def _one_line(text: str) -> str:
    """A field shown on one line: every line break and control character becomes a space."""
    cleaned = "".join(
        " " if unicodedata.category(char) in _LINE_BREAKING_CATEGORIES else char
        for char in _valid_text(text)
        if char not in _BIDI_CONTROLS
    )
    return " ".join(cleaned.split())


def _header_text(text: str) -> str:
    """Text safe to put in a header. Besides line breaks, `=?` must go: the email package decodes
    RFC 2047 encoded words in the value it is given, so a field holding `=?utf-8?b?<base64 of CRLF Bcc:
    ...>?=` would otherwise become a real header when serialised (seen on Python 3.11.7). A word joiner
    (invisible) between the two characters keeps the text as typed and breaks the syntax."""
    return _one_line(text).replace("=?", "=\u2060?")


def _shorten(text: str, limit: int = SUBJECT_PART_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _multi_line(text: str) -> str:
    """Free text (the Description) keeps its lines; other control characters become spaces."""
    lines = _valid_text(text).splitlines()
    return "\n".join(
        "".join(" " if unicodedata.category(c) in _LINE_BREAKING_CATEGORIES else c for c in line).rstrip()
        for line in lines
    ).strip("\n")


def action_short(lead: Lead) -> str:
    """`Install`, `Partner-led trial`, ...: the part of the action's meaning before the colon."""
    code = lead.action
    if not code:
        return "no action code"
    meaning = ACTION_MEANINGS.get(code.upper())
    return meaning.split(":", 1)[0] if meaning else f"action {code}"


def build_subject(lead: Lead) -> str:
    flags = ("[TEST] " if lead.is_test else "") + ("[.edu] " if lead.is_edu else "")
    offer = _shorten(_header_text(lead.offer_name)) or "(offer not named)"
    company = _shorten(_header_text(lead.customer.company)) or "company not given"
    action = _shorten(_header_text(action_short(lead)))
    return f"{flags}New marketplace lead: {offer} — {action} — {company}"


def message_id(lead_id: str, sender: str) -> str:
    """`<lead-id@sender-domain>`: the same lead always gets the same id. The sender's domain when it is a
    plain DNS name (some spam filters dislike a Message-ID domain unrelated to From), else leads.local."""
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2]
    if not _DOMAIN.fullmatch(domain):
        domain = FALLBACK_MESSAGE_ID_DOMAIN
    local = _NOT_ATEXT.sub("-", lead_id) or "lead"
    return f"<{local}@{domain.lower()}>"


def _description_is_meaningful(lead: Lead) -> bool:
    """False for the blank or `Campaigns: ` descriptions Partner Center sends, and for campaign parameters
    (shown on their own)."""
    text = lead.description.strip()
    return bool(text) and not lead.campaign and not _CAMPAIGN_ONLY.fullmatch(text)


def _rows(stored: StoredLead) -> list[tuple[str, str]]:
    """(label, one-line value) for the at-a-glance table, in reading order. No personal data."""
    lead = stored.lead
    received = stored.received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = [
        ("Offer", lead.offer_name),
        ("Action", f"{lead.action} — {lead.action_meaning}" if lead.action else lead.action_meaning),
        ("Company", lead.customer.company or NOT_GIVEN),
        ("Country", lead.customer.country or NOT_GIVEN),
        ("Test lead", "yes (MSFT_TEST)" if lead.is_test else "no"),
        (".edu lead", "yes" if lead.is_edu else "no"),
        ("Received", received),
        ("Lead id", stored.id),
        ("Lead source", lead.lead_source.raw or NOT_GIVEN),
    ]
    if lead.lead_source.offer:
        rows.append(("Offer id", lead.lead_source.offer))
    rows.extend((f"Campaign {key}", value) for key, value in sorted(lead.campaign.items()))
    return [(_one_line(label), _one_line(value)) for label, value in rows]


def _personal_rows(lead: Lead) -> list[tuple[str, str]]:
    customer = lead.customer
    rows = [
        ("Name", customer.full_name or NOT_GIVEN),
        ("E-mail", customer.email or NOT_GIVEN),
        ("Phone", customer.phone or NOT_GIVEN),
        ("Job title", customer.title or NOT_GIVEN),
    ]
    return [(label, _one_line(value)) for label, value in rows]


def _notes(stored: StoredLead, include_pii: bool, medium: str = "e-mail") -> list[str]:
    """Sentences about what this lead is and what the notification (`medium`: e-mail, or a chat message) leaves
    out."""
    lead = stored.lead
    notes = []
    if lead.is_test:
        notes.append(
            "This is a test lead: Partner Center sends one when you press Validate and again after Publish. "
            "No customer is behind it."
        )
    if lead.is_edu:
        notes.append(
            "This lead comes from a .edu domain. Microsoft withholds personal data for .edu domains, so the "
            "lead may have no name, e-mail address or phone number: there is nothing more to find elsewhere."
        )
    if not include_pii:
        withheld = "the customer's name, e-mail address, phone number and job title"
        if _description_is_meaningful(lead):
            withheld = (
                "the customer's name, e-mail address, phone number, job title and the description "
                f"({len(lead.description.strip())} characters, which can hold the customer's own notes)"
            )
        if medium == "e-mail":
            notes.append(
                f"This e-mail does not include {withheld}: lead data should not travel by unsecured e-mail. "
                f"They are stored with the lead ({stored.id}) in the app's table storage. To receive them by "
                "e-mail, set LEADS_EMAIL_INCLUDE_PII=true."
            )
        else:
            notes.append(
                f"This message does not include {withheld}: everyone in the channel would read them. They are "
                f"stored with the lead ({stored.id}) in the app's table storage. LEADS_EMAIL_INCLUDE_PII=true "
                "includes them here too."
            )
    return notes


def console_link(console_url: str, lead_id: str) -> str:
    """The lead in the console (its `#/leads/<id>` route), or "" without LEADS_CONSOLE_URL."""
    if not console_url:
        return ""
    return f"{console_url.rstrip('/')}#/leads/{urllib.parse.quote(lead_id, safe='')}"


def _text_body(stored: StoredLead, include_pii: bool, link: str = "") -> str:
    rows = _rows(stored)
    width = max(len(label) for label, _ in rows) + 2
    lines = ["New Microsoft commercial marketplace lead", ""]
    lines += [f"{label + ':':<{width}}{value}" for label, value in rows]
    if include_pii:
        lines += ["", "Customer"]
        lines += [f"{label + ':':<{width}}{value}" for label, value in _personal_rows(stored.lead)]
        description = _multi_line(stored.lead.description)
        if description.strip():
            lines += ["", "Description:"] + [f"    {line}" for line in description.split("\n")]
    for note in _notes(stored, include_pii):
        lines += ["", note]
    if link:
        lines += ["", f"Open the lead in the console (sign-in needed): {link}"]
    return "\n".join(lines) + "\n"


def _html_table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<tr><th style="text-align:left;padding-right:1em;vertical-align:top">{html.escape(label)}</th>'
        f'<td dir="auto">{html.escape(value)}</td></tr>'
        for label, value in rows
    )
    return f"<table>{cells}</table>"


def _html_body(stored: StoredLead, subject: str, include_pii: bool, link: str = "") -> str:
    parts = ["<h2>New Microsoft commercial marketplace lead</h2>", _html_table(_rows(stored))]
    if include_pii:
        parts += ["<h3>Customer</h3>", _html_table(_personal_rows(stored.lead))]
        description = _multi_line(stored.lead.description)
        if description.strip():
            parts += [
                "<h3>Description</h3>",
                f'<div dir="auto" style="white-space:pre-wrap">{html.escape(description)}</div>',
            ]
    parts += [f"<p>{html.escape(note)}</p>" for note in _notes(stored, include_pii)]
    if link:
        parts.append(f'<p><a href="{html.escape(link, quote=True)}">Open the lead in the console</a> (sign-in '
                     "needed)</p>")
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head><body>{''.join(parts)}</body></html>\n"
    )


def build_notification(
    stored: StoredLead, settings: EmailSettings, *, now: datetime | None = None, console_url: str = ""
) -> EmailMessage:
    """The notification for one lead, ready for `smtplib.SMTP.send_message`. `now` is the Date header
    (the time of sending, by default now); with `console_url` (LEADS_CONSOLE_URL) it links to the lead there."""
    link = console_link(console_url, stored.id)
    subject = build_subject(stored.lead)
    message = EmailMessage(policy=POLICY)
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.to)
    message["Date"] = email.utils.format_datetime(now or utcnow())
    message["Message-ID"] = message_id(stored.id, settings.sender)
    message["X-Lead-Id"] = _NOT_ATEXT.sub("-", stored.id)
    # RFC 3834: machine-generated, so auto-responders (out-of-office) do not answer it.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_text_body(stored, settings.include_pii, link), subtype="plain", charset="utf-8")
    message.add_alternative(_html_body(stored, subject, settings.include_pii, link), subtype="html", charset="utf-8")
    for part in message.iter_parts():
        # set_content gives each new part its own MIME-Version; it belongs on the top level only.
        del part["MIME-Version"]
    return message


TITLE = "New Microsoft commercial marketplace lead"


@dataclass(frozen=True)
class NotificationContent:
    """What a chat notification (Teams, Slack) says about one lead: the e-mail's content, as plain one-line
    values (multi-line for the description). Each target escapes every value for its own markup."""

    title: str
    flags: tuple[str, ...]  # "TEST", ".edu"
    summary: str  # the e-mail's subject: a one-line fallback text
    rows: list[tuple[str, str]]
    personal_rows: list[tuple[str, str]]  # empty unless LEADS_EMAIL_INCLUDE_PII=true
    description: str  # empty unless LEADS_EMAIL_INCLUDE_PII=true
    notes: list[str]
    link: str  # the lead in the console, or ""


def notification_content(stored: StoredLead, include_pii: bool, console_url: str = "") -> NotificationContent:
    """The same content as the e-mail, with the same personal-data rule (LEADS_EMAIL_INCLUDE_PII)."""
    lead = stored.lead
    description = _multi_line(lead.description) if include_pii else ""
    return NotificationContent(
        title=TITLE,
        flags=tuple(flag for flag, on in (("TEST", lead.is_test), (".edu", lead.is_edu)) if on),
        summary=build_subject(lead),
        rows=_rows(stored),
        personal_rows=_personal_rows(lead) if include_pii else [],
        description=description if description.strip() else "",
        notes=_notes(stored, include_pii, medium="message"),
        link=console_link(console_url, stored.id),
    )
