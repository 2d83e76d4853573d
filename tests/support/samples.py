"""The sample payloads in the repository's samples/ folder (the ones a user can POST too)."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()
