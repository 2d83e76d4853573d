"""Azurite for tests: in memory, on free ports, one per test session (per worker under pytest-xdist,
since each worker is its own process and session). Use the `azurite` fixture from tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

from devhost.azurite import Azurite, start_azurite

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def start_test_azurite(workspace: Path) -> Azurite:
    """A throwaway Azurite: `.connection_string` is the explicit devstoreaccount1 string for its ports."""
    return start_azurite(PROJECT_ROOT, workspace, free_ports=True, in_memory=True)
