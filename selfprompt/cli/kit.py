"""The kit itself: where a number was computed."""
from __future__ import annotations

import json


def cmd_provenance(args) -> int:
    from ..utils.provenance import environment

    print(json.dumps(environment(), indent=1))
    return 0


def add_commands(command) -> None:
    command("provenance", "kit commit, libraries, CPU, arithmetic settings (JSON)", cmd_provenance)
