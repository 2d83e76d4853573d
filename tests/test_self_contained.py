"""The repository holds everything its tests, README and comments use: nothing reads or names a folder
beside it (a clone with nothing beside it must pass `make test`)."""

from __future__ import annotations

import subprocess

from tests.support.azurite import PROJECT_ROOT

# Built from parts so that this file does not name what it looks for.
OUTSIDE = ("../" + "shar" + "ed", "/work/" + "shar" + "ed")


def test_no_tracked_file_reads_or_names_a_folder_outside_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True)
    offenders = []
    for name in tracked.stdout.decode().split("\0"):
        path = PROJECT_ROOT / name
        if not name or not path.is_file() or name == "package-lock.json":
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{name}: {needle}" for needle in OUTSIDE if needle in text]
    assert offenders == []


def test_the_samples_and_references_the_documentation_cites_are_in_the_repository() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    troubleshooting = (PROJECT_ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    for cited in ("samples/camelcase-wire.json", "samples/faq-test-lead-as-printed.txt", "docs/faq/"):
        assert cited in readme
        assert (PROJECT_ROOT / cited).exists(), cited
    assert "docs/faq/" in troubleshooting  # the FAQ its Partner Center messages are quoted from
    assert (PROJECT_ROOT / "docs" / "stack.md").is_file()
    assert (PROJECT_ROOT / "docs" / "marketplace-leads.md").is_file()
