"""``kosearch serve INDEX``: parse the options, build the service's app, run it under uvicorn."""

from __future__ import annotations

import os
import secrets
from dataclasses import fields
from pathlib import Path
from typing import Optional

import typer

from kosearch.cli.output import DeviceOption, EncoderBackendOption, status, warn
from kosearch.errors import KosearchError


def serve(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="Index folder to serve."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 0.0.0.0 exposes the service to the network."),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535, help="TCP port (0: any free port)."),
    allow_writes: bool = typer.Option(
        False, "--allow-writes", help="Accept POST/PUT /texts and /texts/delete (needs a token; holds the write lock)."
    ),
    token: Optional[str] = typer.Option(
        None, "--token", envvar="KOSEARCH_TOKEN", help="Bearer token writes must send; generated and printed if not given."
    ),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Encoder the index was built with (default: its own)."),
    device: Optional[str] = DeviceOption,
    encoder_backend: Optional[str] = EncoderBackendOption,
    max_k: Optional[int] = typer.Option(None, "--max-k", min=1, help="Most hits per query (default 100)."),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", min=1, help="Most queries or texts per request (default 64)."),
    max_body_bytes: Optional[int] = typer.Option(None, "--max-body-bytes", min=1024, help="Largest request body (default 1 MiB)."),
) -> None:
    """Serve an index over HTTP: a Korean search page at /, the API at /search, OpenAPI docs at /docs.

    Read-only by default. Commits that `kosearch index` makes in another process are seen by the next request, without a restart.
    """
    try:
        import uvicorn

        from kosearch.serve import ServiceLimits, create_app
    except ImportError as error:
        raise KosearchError(
            f"kosearch serve needs the service packages ({error.name} is missing): pip install 'kosearch[serve]'"
        ) from None

    chosen = {"max_k": max_k, "max_batch": max_batch, "max_body_bytes": max_body_bytes}
    limits = ServiceLimits(**{f.name: chosen[f.name] for f in fields(ServiceLimits) if chosen.get(f.name) is not None})
    if allow_writes and not token:
        token = secrets.token_urlsafe(24)
        status(f"kosearch: writes need this token (Authorization: Bearer {token})")
    if host not in ("127.0.0.1", "localhost", "::1"):
        warn(f"serving on {host}: anyone who can reach this address can search the index")
    app = create_app(
        index_path, model=model, device=device, encoder_backend=encoder_backend, allow_writes=allow_writes, token=token, limits=limits)
    status(f"kosearch: serving {index_path} on http://{host}:{port} (search page /, API docs /docs)")
    try:
        uvicorn.run(app, host=host, port=port, log_level=os.environ.get("KOSEARCH_LOG_LEVEL", "warning"))
    except OSError as error:  # the port is taken, the address is not ours
        raise KosearchError(f"cannot serve on {host}:{port}: {error.strerror or error}") from None
