"""`.funcignore` ships the app and nothing else (gitignore syntax, matched here with a small subset of it:
`name` matches at any depth, `name/` only directories, `*` within one path segment)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    """Whether `path` (a file; its parents are directories) is left out of the package."""
    parts = path.split("/")
    for pattern in patterns():
        directory_only = pattern.endswith("/")
        name = pattern.rstrip("/")
        # A pattern matches a parent directory at any depth, or (unless directory-only) the file itself.
        candidates = parts[:-1] if directory_only else parts
        if any(fnmatchcase(part, name) for part in candidates):
            return True
    return False


@pytest.mark.parametrize("path", [
    "tests/core/test_parsing.py", "tests/infra/test_bicep_policy.py", ".venv/bin/python", ".venv-checkov/bin/checkov",
    "node_modules/azurite/package.json", "local.settings.json", ".local/mail/1.eml", ".local/spool/x.json",
    "__azurite_db_table__.json", "infra/main.bicep", "infra/modules/storage.bicep", "devhost/host.py",
    "leads/__pycache__/settings.cpython-311.pyc", ".git/HEAD", "requirements-dev.txt",
    "samples/camelcase-wire.json", "docs/stack.md",
])
def test_left_out(path: str) -> None:
    assert ignored(path), f"{path} would be published"


@pytest.mark.parametrize("path", [
    "function_app.py", "host.json", "requirements.txt", "leads/core/settings.py", "leads/triggers/http.py",
    "leads/core/destination.py",
])
def test_shipped(path: str) -> None:
    assert not ignored(path), f"{path} is needed by the app but left out"
