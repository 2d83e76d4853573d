"""The notification e-mail (leads.core.notification): content, privacy and header safety. No network."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.core.model import Customer, Lead, LeadSource, StoredLead
from leads.core.notification import POLICY, build_notification
from leads.core.settings import EmailSettings

LEAD_ID = "20261121T044355123Z-9f3a1c2e"
RECEIVED = datetime(2026, 11, 21, 4, 43, 55, 123000, tzinfo=UTC)
EMAIL = EmailSettings(to=("sales@contoso.com", "ops@contoso.com"), sender="Leads <leads@contoso.com>")
WITH_PII = replace(EMAIL, include_pii=True)

# Distinctive values: found nowhere else in a message, so their absence means something.
FIRST, LAST = "Quillonia", "Vexmorrow"
ADDRESS = "quillonia.vexmorrow@fabrikam-pii.example"
PHONE = "+1 617 555 0142"
JOB_TITLE = "Chief Zzyzx Officer"
NOTES = "Please call me on my mobile after 6pm, ask for Quentin Blorp"
PERSONAL = (FIRST, LAST, ADDRESS, PHONE, JOB_TITLE, NOTES, "Quentin Blorp")

HEADERS = sorted(
    ["subject", "from", "to", "date", "message-id", "x-lead-id", "auto-submitted", "mime-version", "content-type"]
)
PART_HEADERS = ["content-transfer-encoding", "content-type"]


def a_lead(**changes: object) -> Lead:
    lead = Lead(
        customer=Customer(
            first_name=FIRST, last_name=LAST, email=ADDRESS, phone=PHONE, country="US", company="Contoso Ltd",
            title=JOB_TITLE,
        ),
        lead_source=LeadSource(raw="AzureMarketplace-INS|contoso.widget-pro", source="AzureMarketplace",
                               action="INS", offer="contoso.widget-pro"),
        action_code="PLT",
        offer_title="Widget Pro",
        description=NOTES,
    )
    return replace(lead, **changes)  # type: ignore[arg-type]


def stored(lead: Lead | None = None, lead_id: str = LEAD_ID) -> StoredLead:
    return StoredLead(id=lead_id, received_at=RECEIVED, lead=lead or a_lead())


def serialise(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=POLICY)


def parse(raw: bytes) -> EmailMessage:
    parsed: EmailMessage = BytesParser(policy=default_policy).parsebytes(raw)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    text, page = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and page is not None
    return text.get_content(), page.get_content()


def everything_readable(raw: bytes) -> str:
    """What a reader could see: the raw bytes, every decoded header and both decoded parts."""
    message = parse(raw)
    headers = "\n".join(f"{name}: {value}" for name, value in message.items())
    return "\n".join([raw.decode("ascii"), headers, *parts(message)])


def test_no_personal_data_by_default() -> None:
    raw = serialise(build_notification(stored(), EMAIL))
    readable = everything_readable(raw)
    for value in PERSONAL:
        assert value not in readable
    text, page = parts(parse(raw))
    assert "LEADS_EMAIL_INCLUDE_PII=true" in text
    assert "description (60 characters" in text  # says a description exists, without showing it
    assert "LEADS_EMAIL_INCLUDE_PII=true" in page


def test_personal_data_with_include_pii() -> None:
    text, page = parts(parse(serialise(build_notification(stored(), WITH_PII))))
    for value in PERSONAL:
        assert value in text
        assert value in page
    assert f"{FIRST} {LAST}" in text
    assert "LEADS_EMAIL_INCLUDE_PII" not in text


def test_useful_at_a_glance_in_both_parts() -> None:
    lead = a_lead(description='{"mktcmpid": "spring-2026", "partnerid": "12345"}',
                  campaign={"mktcmpid": "spring-2026", "partnerid": "12345"})
    message = parse(serialise(build_notification(stored(lead), EMAIL)))
    for body in parts(message):
        for expected in ("Widget Pro", "PLT", "Partner-led trial: the customer asked to be contacted", "Contoso Ltd",
                         "US", "2026-11-21 04:43:55 UTC", LEAD_ID, "AzureMarketplace-INS|contoso.widget-pro",
                         "mktcmpid", "spring-2026", "partnerid", "12345"):
            assert expected in body
    assert message["Subject"] == "New marketplace lead: Widget Pro — Partner-led trial — Contoso Ltd"
    assert message["From"] == "Leads <leads@contoso.com>"
    assert message["To"] == "sales@contoso.com, ops@contoso.com"
    assert message["Auto-Submitted"] == "auto-generated"


def test_a_campaign_only_description_is_not_called_withheld_notes() -> None:
    lead = a_lead(description="Campaigns: ", campaign={})
    text, _ = parts(parse(serialise(build_notification(stored(lead), EMAIL))))
    assert "the description" not in text


def test_test_lead_is_flagged() -> None:
    message = parse(serialise(build_notification(stored(a_lead(is_test=True)), EMAIL)))
    assert str(message["Subject"]).startswith("[TEST] New marketplace lead: ")
    for body in parts(message):
        assert "This is a test lead" in body
    ordinary = parse(serialise(build_notification(stored(), EMAIL)))
    assert "[TEST]" not in str(ordinary["Subject"])
    assert "This is a test lead" not in parts(ordinary)[0]


def test_edu_lead_says_microsoft_withholds_personal_data() -> None:
    lead = a_lead(customer=Customer(email="someone@university.edu", country="US"), is_edu=True)
    message = parse(serialise(build_notification(stored(lead), EMAIL)))
    assert "[.edu]" in str(message["Subject"])
    for body in parts(message):
        assert "Microsoft withholds personal data for .edu domains" in body
    assert "company not given" in str(message["Subject"])


def test_message_id_is_derived_from_the_lead_id() -> None:
    first = build_notification(stored(), EMAIL)
    again = build_notification(stored(a_lead(offer_title="changed")), WITH_PII)  # a re-send of the same lead
    assert first["Message-ID"] == again["Message-ID"] == f"<{LEAD_ID}@contoso.com>"
    assert first["X-Lead-Id"] == LEAD_ID
    other = build_notification(stored(lead_id="20261121T044355124Z-00000000"), EMAIL)
    assert other["Message-ID"] != first["Message-ID"]
    odd_sender = build_notification(stored(), replace(EMAIL, sender="leads@[127.0.0.1]"))
    assert odd_sender["Message-ID"] == f"<{LEAD_ID}@leads.local>"


INJECTION = "x\r\nBcc: evil@attacker.example\r\nX-Injected: yes\n\rSubject: forged\u2028X-Also: 1"
# An RFC 2047 encoded word that decodes to CRLF + a header: the email package decodes encoded words in the
# values it is given, and Python 3.11.7 then writes the decoded CRLF out raw.
ENCODED_INJECTION = "=?utf-8?b?" + base64.b64encode(b"x\r\nBcc: evil@attacker.example").decode() + "?="

FIELDS = {
    "company": lambda v: a_lead(customer=replace(a_lead().customer, company=v)),
    "country": lambda v: a_lead(customer=replace(a_lead().customer, country=v)),
    "first_name": lambda v: a_lead(customer=replace(a_lead().customer, first_name=v)),
    "last_name": lambda v: a_lead(customer=replace(a_lead().customer, last_name=v)),
    "email": lambda v: a_lead(customer=replace(a_lead().customer, email=v)),
    "phone": lambda v: a_lead(customer=replace(a_lead().customer, phone=v)),
    "title": lambda v: a_lead(customer=replace(a_lead().customer, title=v)),
    "offer_title": lambda v: a_lead(offer_title=v),
    "action_code": lambda v: a_lead(action_code=v),
    "description": lambda v: a_lead(description=v),
    "lead_source": lambda v: a_lead(lead_source=LeadSource(raw=v, source=v, action=v, offer=v)),
    "campaign": lambda v: a_lead(campaign={v: v}),
}


def assert_only_our_headers(built: EmailMessage) -> EmailMessage:
    """Serialised and parsed back, the message has exactly our headers, and the subject is one line that
    reads back as it was built."""
    message = parse(serialise(built))
    assert sorted(name.lower() for name in message) == HEADERS
    for part in message.iter_parts():
        assert sorted(name.lower() for name in part) == PART_HEADERS
    assert not message.defects
    subject = str(built["Subject"])
    assert "\r" not in subject and "\n" not in subject
    assert message["Subject"] == subject
    return message


@pytest.mark.parametrize("value", [INJECTION, ENCODED_INJECTION], ids=["crlf", "encoded-word"])
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_a_line_break_in_any_field_creates_no_header(field: str, value: str) -> None:
    for email_settings in (EMAIL, WITH_PII):
        message = build_notification(stored(FIELDS[field](value)), email_settings)
        raw = serialise(message)
        top_headers = raw.split(b"\r\n\r\n", 1)[0]
        assert b"\nBcc:" not in top_headers and b"\nX-Injected:" not in top_headers
        assert_only_our_headers(message)


def test_an_injection_in_the_lead_id_creates_no_header() -> None:
    assert_only_our_headers(build_notification(stored(lead_id=INJECTION), EMAIL))


def test_control_characters_are_not_passed_on() -> None:
    # A terminal escape, a NUL, a DEL, and a right-to-left override (which makes "Corpexe.pdf" display as
    # "Corpfdp.exe").
    company = "Evil\x1b[2J\x00Corp\x7f\u202eexe.pdf"
    lead = a_lead(customer=replace(a_lead().customer, company=company), description="a\x00b\x1bc")
    message = parse(serialise(build_notification(stored(lead), WITH_PII)))
    assert "Evil [2J Corp exe.pdf" in str(message["Subject"])
    for body in parts(message):
        assert not any(char in body for char in "\x00\x1b\x7f\u202e")


def test_markup_is_shown_as_text_in_the_html_part() -> None:
    markup = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    lead = a_lead(customer=replace(a_lead().customer, company=markup, first_name=markup), description=markup,
                  offer_title="A & B <b>bold</b>")
    _, page = parts(parse(serialise(build_notification(stored(lead), WITH_PII))))
    assert "<script>" not in page and "<img" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "A &amp; B &lt;b&gt;bold&lt;/b&gt;" in page


def test_names_in_any_script_round_trip() -> None:
    company, offer, first_name = "北京字节跳动科技有限公司", "عرض تجريبي للمؤسسات", "Zoë 🚀👩‍💻"
    lead = a_lead(customer=replace(a_lead().customer, company=company, first_name=first_name), offer_title=offer)
    raw = serialise(build_notification(stored(lead), WITH_PII))
    assert raw.isascii()  # 7-bit clean: valid on a server without 8BITMIME or SMTPUTF8
    header_lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert max(len(line) for line in header_lines) <= 78  # folded as RFC 5322 recommends
    message = parse(raw)
    assert message["Subject"] == f"New marketplace lead: {offer} — Partner-led trial — {company}"
    for body in parts(message):
        assert company in body and offer in body and first_name in body
    text_part = message.get_body(("plain",))
    assert text_part is not None and text_part.get_content_charset() == "utf-8"


def test_the_message_is_7bit_even_when_every_line_is_short() -> None:
    # Short lines of UTF-8 could go out as raw 8-bit, which a server without 8BITMIME may mangle.
    lead = Lead(customer=Customer(company="Zoë"), action_code="X")
    raw = serialise(build_notification(stored(lead), WITH_PII))
    assert raw.isascii()
    assert "Zoë" in parts(parse(raw))[0]


def test_spaces_survive_where_the_subject_is_folded() -> None:
    # Found by the property test: Python's folder turned the space before "—" into folding whitespace
    # between two encoded words, which readers drop ("no action code— ¡").
    lead = a_lead(offer_title="0\u0800", action_code="", lead_source=LeadSource(), customer=Customer(company="¡"))
    message = parse(serialise(build_notification(stored(lead), EMAIL)))
    assert message["Subject"] == "New marketplace lead: 0\u0800 — no action code — ¡"


def test_a_long_field_is_shortened_in_the_subject_only() -> None:
    company = "Contoso " * 40
    message = parse(serialise(build_notification(stored(a_lead(customer=Customer(company=company))), EMAIL)))
    assert len(str(message["Subject"])) < 250
    assert company.strip() in parts(message)[0]


def test_a_lone_surrogate_does_not_break_the_message() -> None:
    # JSON allows "\ud800"; UTF-8 cannot encode it.
    lead = a_lead(customer=replace(a_lead().customer, company="Bad \ud800 Co"), description="a\udfffb")
    message = parse(serialise(build_notification(stored(lead), WITH_PII)))
    assert "Bad \ufffd Co" in str(message["Subject"])
    assert "a\ufffdb" in parts(message)[0]


# Any code point, surrogates included, plus the fragments that break mail.
_character = st.characters(exclude_categories=())
_fragment = st.sampled_from(["\r\n", "\r", "\n", "\u2028", "\x85", "\x00", "=?", "?=", "=?utf-8?q?", "<", "&",
                             ".", " ", "\t", ":", "Bcc: ", "\u202e", ENCODED_INJECTION])
_text = st.lists(st.one_of(_character.map(str), _fragment), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    first_name=_text, last_name=_text, email=_text, phone=_text, country=_text, company=_text, title=_text,
    offer_title=_text, action_code=_text, description=_text, lead_source=_text, campaign=st.dictionaries(_text, _text,
                                                                                                        max_size=2),
    is_test=st.booleans(), is_edu=st.booleans(), include_pii=st.booleans(),
)
def test_any_text_in_any_field_makes_a_well_formed_message(
    first_name: str, last_name: str, email: str, phone: str, country: str, company: str, title: str,
    offer_title: str, action_code: str, description: str, lead_source: str, campaign: dict[str, str],
    is_test: bool, is_edu: bool, include_pii: bool,
) -> None:
    lead = Lead(
        customer=Customer(first_name, last_name, email, phone, country, company, title),
        lead_source=LeadSource(raw=lead_source, offer=lead_source), action_code=action_code,
        offer_title=offer_title, description=description, campaign=campaign, is_test=is_test, is_edu=is_edu,
    )
    built = build_notification(stored(lead), replace(EMAIL, include_pii=include_pii))
    raw = serialise(built)
    assert raw.isascii()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    message = assert_only_our_headers(built)
    text, page = parts(message)
    assert text.startswith("New Microsoft commercial marketplace lead")
    assert page.startswith("<!DOCTYPE html>")


def test_links_to_the_lead_in_the_console_when_leads_console_url_is_set() -> None:
    from leads.core.settings import load_settings
    from leads.destinations.email import create

    console = 'https://leads.example.com/api/console?x="<b>'  # escaped in HTML, kept whole in text
    text, page = parts(parse(serialise(build_notification(stored(), EMAIL, console_url=console + "/"))))
    link = f"{console}#/leads/{LEAD_ID}"
    assert f"Open the lead in the console (sign-in needed): {link}" in text
    assert 'href="https://leads.example.com/api/console?x=&quot;&lt;b&gt;#/leads/' + LEAD_ID + '"' in page
    assert "<b>" not in page
    text, page = parts(parse(serialise(build_notification(stored(), EMAIL))))
    assert "console" not in text and "console" not in page  # no setting, no link
    settings = load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                              "LEADS_CONSOLE_URL": "https://leads.example.com/api/console"})
    assert create(settings).console_url == "https://leads.example.com/api/console"
    insecure = load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                              "LEADS_CONSOLE_URL": "http://leads.example.com/api/console"})
    assert insecure.console_url == "" and "LEADS_CONSOLE_URL" in insecure.warnings
