"""The settings tables of docs/settings.md, generated from `leads.core.settings.SETTINGS` so that the documentation
cannot drift from what the app reads. The prose around the tables is written by hand; the tables sit between
two markers and are replaced whole.

    python -m leads.cli.settings_doc            rewrites the tables in docs/settings.md
    python -m leads.cli.settings_doc --check    exits 1 (and says so) if they are out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from leads.core.settings import SETTINGS, Setting

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
BEGIN = "<!-- settings tables: generated from leads/core/settings.py by `python -m leads.cli.settings_doc` -->"
END = "<!-- end of the generated settings tables -->"
# Headings of the registry's groups, in the order they are shown; a group not named here gets its own name.
GROUP_TITLES = {"storage": "Storage", "core": "Pipeline", "email": "E-mail notification", "webhook": "Webhook",
                "dynamics": "Dynamics 365", "salesforce": "Salesforce", "marketo": "Marketo", "hubspot": "HubSpot",
                "teams": "Microsoft Teams", "slack": "Slack"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(setting: Setting) -> str:
    default = f"`{_cell(setting.default)}`" if setting.default else ""
    secret = " *(secret)*" if setting.secret else ""
    return f"| `{setting.name}` | {default} | {_cell(setting.description)}{secret} |"


def render_tables(settings: tuple[Setting, ...] = SETTINGS) -> str:
    groups = list(GROUP_TITLES) + [s.group for s in settings if s.group not in GROUP_TITLES]
    blocks = []
    for group in dict.fromkeys(groups):
        rows = [_row(s) for s in settings if s.group == group]
        if rows:
            title = GROUP_TITLES.get(group, group.capitalize())
            blocks.append("\n".join([f"**{title}**", "", "| Setting | Default | What it does |", "|---|---|---|",
                                     *rows]))
    return "\n\n".join(blocks)


def render_document(current: str) -> str:
    """`current` with the text between the markers replaced by freshly generated tables."""
    head, found, rest = current.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise ValueError(f"{DOCUMENT.name} lacks the markers that frame the generated tables: {BEGIN} ... {END}")
    return f"{head}{BEGIN}\n\n{render_tables()}\n\n{END}{tail}"


def main(argv: list[str]) -> int:
    current = DOCUMENT.read_text(encoding="utf-8")
    wanted = render_document(current)
    if "--check" in argv:
        if wanted != current:
            print(f"{DOCUMENT} is out of date: run `python -m leads.cli.settings_doc`.", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        DOCUMENT.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
