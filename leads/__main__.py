"""`python -m leads COMMAND`: operator commands (list, show, replay, quarantine, export, send-test-lead,
status, doctor), in the `leads.cli` package. `python -m leads --help` lists them and the exit codes."""

from __future__ import annotations

import sys

from leads.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
