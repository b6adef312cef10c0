"""What every command group shares: where output goes, how untrusted text is printed, tables or lines.

Human output goes to stdout; progress, status lines and warnings go to stderr, so ``--json``
output on stdout can always be piped into another program.

Text that kosearch did not write (document sentences, queries, file names, skip reasons, model
names, error messages that quote any of them) passes through :func:`printable` before it is
printed: rich would otherwise read ``[/b]`` in a document as markup (and crash on it), and a
document holding ``ESC[2J`` would clear the user's terminal. It is printed as ``Text`` (never
parsed as markup) or, inside a markup string, through :func:`markup_safe`.

Results are tables in a terminal and plain lines (tab-separated, never cut) when stdout is a
pipe or a file, or when a table could only fit the terminal by breaking words: a sentence or a
``path:line`` is never shortened with "…".
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from typing import Any

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from kosearch.index import ENCODER_BACKEND_HELP, ENCODER_PROCESS_HELP, PRECISIONS

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DeviceOption = typer.Option(None, "--device", help="cpu, cuda, cuda:1, ... (default: CUDA when present).")
EncoderBackendOption = typer.Option(
    None,
    "--encoder-backend",
    help=ENCODER_BACKEND_HELP + " Default: what the index was built with (torch for a new index).",
)

VectorStoreOption = typer.Option(
    None,
    "--vector-store",
    help="Where a new index keeps its vectors: 'faiss' (default: segment files in the index folder), "
    "'qdrant://HOST:6333/COLLECTION' (a Qdrant server or cluster; API key from $QDRANT_API_KEY; "
    "pip install \"kosearch[qdrant]\") or 'qdrant:local' (Qdrant's on-disk mode inside the index folder, "
    "no server, one process at a time). Rows stay in SQLite. An existing index keeps the one it was "
    "made with: naming another for it is an error.",
)
EncoderProcessOption = typer.Option(
    None,
    "--encoder-process",
    help=ENCODER_PROCESS_HELP + " Nothing about the index changes; it only decides this run's memory.",
)
PrecisionOption = typer.Option(
    None,
    "--precision",
    help=f"What the encoder computes in: {', '.join(PRECISIONS)} (auto: fp16 on CUDA, fp32 elsewhere). "
    "Stored vectors are float32 either way.",
)

# C0 controls, DEL, C1 controls; the bidirectional overrides, embeddings and isolates (which can make
# text display in another order than it reads: "Trojan source"); line and paragraph separators.
_INVISIBLE = "\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_UNSAFE = re.compile(f"[\x00-\x1f{_INVISIBLE}]")
_UNSAFE_EXCEPT_LAYOUT = re.compile(f"[\x00-\x08\x0b-\x1f{_INVISIBLE}]")  # keeps \t and \n
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def printable(value: object, *, one_line: bool = False) -> str:
    """``value`` as text that shows every character and commands the terminal with none.

    Control characters become visible escapes in Python's notation (``ESC`` -> ``\\x1b``,
    U+202E -> ``\\u202e``). Newlines and tabs are kept (a table cell can hold several lines)
    unless ``one_line`` is set, for output where each record must stay on its line. Rich markup
    is left as it is: print the result as ``Text``, or pass it through :func:`markup_safe`.
    """
    pattern = _UNSAFE if one_line else _UNSAFE_EXCEPT_LAYOUT
    return pattern.sub(_escape_character, str(value))


def _escape_character(match: re.Match[str]) -> str:
    character = match.group()
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def markup_safe(value: object) -> str:
    """:func:`printable`, with rich markup escaped, for a value placed inside a markup string."""
    return escape(printable(value))


def as_text(value: object, style: str = "") -> Text:
    """Untrusted ``value`` as a rich ``Text`` (never parsed as markup), with an optional style."""
    return Text(printable(value), style=style)


def warn(message: object) -> None:
    """A warning line on stderr; ``message`` is printed as text, never as markup."""
    err.print(Text.assemble(("warning:", "yellow"), " ", printable(message)))


def status(message: object) -> None:
    """A line on stderr saying what kosearch is doing (before anything slow)."""
    err.print(Text(printable(message), style="dim"))


def show_error(message: object) -> None:
    """The one ``error: ...`` line a failed command prints."""
    err.print(Text.assemble(("error:", "bold red"), " ", printable(message)))


def add_unbroken_column(table: Table, header: str, cells: Iterable[str | Text], **options: Any) -> None:
    """A column that never wraps (a ``path:line``, a number, a model id), as wide as its widest cell.

    Rich's fit check (:func:`print_table`) then counts its full width: a no-wrap column is never
    squeezed, so a table too wide for it becomes plain lines instead of a cropped, "…"-ended one.
    """
    widest = max([cell_len(header), *(cell_len(cell.plain if isinstance(cell, Text) else cell) for cell in cells)])
    table.add_column(header, no_wrap=True, overflow="fold", min_width=widest, **options)


def print_table(console: Console, table: Table, plain_lines: Iterable[str], *, room: int = 0) -> None:
    """``table`` where it fits a terminal, otherwise ``plain_lines`` (one record per line, nothing cut).

    "Fits" means every wrapping column gets at least its longest word, and ``room`` more cells
    between them (so a sentence column is not one word wide), so rich only wraps between words.
    A narrower terminal, or a pipe (where there is no width to fit), gets the lines. Columns
    should be ``overflow="fold"`` (or :func:`add_unbroken_column`), so even a misjudged fit
    breaks a word instead of cutting it off.
    """
    if console.is_terminal and _minimum_width(console, table) + room <= console.width:
        console.print(table)
        return
    # Written past rich, which would expand the tabs into spaces. The lines are made printable already.
    console.file.write("".join(f"{line}\n" for line in plain_lines))
    console.file.flush()


def _minimum_width(console: Console, table: Table) -> int:
    unlimited = console.options.update_width(1_000_000)
    return Measurement.get(console, unlimited, table).minimum


def plain_row(*cells: object) -> str:
    """One tab-separated line of untrusted cells (tabs and newlines inside a cell made visible)."""
    return "\t".join(printable(cell, one_line=True) for cell in cells)


def emit_json(value: Any) -> None:
    """One JSON document per line on stdout, Korean left readable."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()
