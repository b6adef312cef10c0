"""Running kosearch's work on an existing distributed engine instead of one process.

``ray_ingest``: reading, splitting, lexical analysis and encoding of a folder on a Ray cluster, with the
driver committing what comes back through the store's one checkpoint protocol (``kosearch.ingest``).
Ray is an optional dependency (``pip install "kosearch[ray]"``); nothing here is imported by kosearch
unless a run asks for Ray.
"""

from __future__ import annotations

from kosearch.distributed.options import RayOptions

__all__ = ["RayOptions"]
