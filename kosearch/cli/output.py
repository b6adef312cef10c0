"""What every command group shares: where output goes, how JSON is printed, the --device option.

Human output goes to stdout as rich tables; progress and warnings go to stderr, so ``--json``
output on stdout can always be piped into another program.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

DeviceOption = typer.Option(None, "--device", help="cpu, cuda, cuda:1, ... (default: CUDA when present).")


def emit_json(value: Any) -> None:
    """One JSON document per line on stdout, Korean left readable."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()
