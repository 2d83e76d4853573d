"""Local runs read settings the way `func start` and `make run` do: the environment wins, then
`local.settings.json` (`Values`), else `local.settings.sample.json`. In Azure only the environment
(the app settings) counts, and neither file is deployed."""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from pathlib import Path

SETTINGS_FILES = ("local.settings.json", "local.settings.sample.json")


def read_local_settings(root: Path) -> dict[str, str]:
    """The `Values` of the first settings file found in `root` (empty if none)."""
    for name in SETTINGS_FILES:
        path = root / name
        if path.is_file():
            values = json.loads(path.read_text(encoding="utf-8")).get("Values") or {}
            return {str(k): str(v) for k, v in values.items()}
    return {}


def apply_local_settings(root: Path, env: MutableMapping[str, str] | None = None) -> None:
    """Fill in what the environment does not set."""
    target = os.environ if env is None else env
    for name, value in read_local_settings(root).items():
        target.setdefault(name, value)
