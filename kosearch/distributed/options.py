"""How a Ray ingest uses its cluster: declared once, read by the Python API and the CLI alike."""

from __future__ import annotations

from dataclasses import dataclass

from kosearch.errors import KosearchError

MISSING_RAY = 'Ray ingest needs Ray, which is not installed: pip install "kosearch[ray]"'


def import_ray():
    """``ray``, or a one-line :class:`KosearchError` saying which extra to install."""
    try:
        import ray
    except ImportError:
        raise KosearchError(MISSING_RAY) from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where the Ray cluster is and how the ingest spreads over it.

    >>> RayOptions()                                   # join this machine's cluster, else start a local one
    >>> RayOptions("ray://head:10001", encode_workers=8)   # a remote cluster, 8 encoding actors
    """

    address: str = "auto"
    """``auto``: the cluster named by ``RAY_ADDRESS`` or started on this machine with ``ray start``, else a
    new local one; anything else is handed to ``ray.init(address=...)`` (``ray://host:10001``,
    ``host:6379``). Ignored when this process has already called ``ray.init``."""
    encode_workers: int | None = None
    """Encoding actors, each holding one model. None: one per GPU in the cluster, else one per two CPUs
    (one CPU each, the other left for reading and splitting)."""
    gpus_per_worker: float | None = None
    """GPUs each encoding actor asks Ray for. None: 1 when the cluster has GPUs, else 0 (CPU encoding)."""
    cpus_per_worker: float = 1.0
    """CPUs each encoding actor asks for; Ray sets its OMP_NUM_THREADS to this (at least 1)."""
    read_cpus: float = 1.0
    """CPUs each reading/splitting task asks for."""
    files_per_task: int = 16
    """Files one reading/splitting task handles: a file is the unit of parallelism (one huge file is
    read by one task), and a task is Ray's unit of scheduling overhead."""
    documents_per_batch: int = 64
    """Documents one encoding call gets; their sentences go to the encoder in one list, which
    sentence-transformers sorts by length before batching."""

    def __post_init__(self) -> None:
        if not str(self.address).strip():
            raise KosearchError("--ray needs an address: 'auto', or the cluster's address (ray://host:10001)")
        for name in ("files_per_task", "documents_per_batch"):
            if getattr(self, name) < 1:
                raise KosearchError(f"RayOptions.{name} must be at least 1")
        if self.encode_workers is not None and self.encode_workers < 1:
            raise KosearchError("--ray-workers must be at least 1")
        if (self.gpus_per_worker is not None and self.gpus_per_worker < 0) or self.cpus_per_worker < 0:
            raise KosearchError("GPUs and CPUs per Ray worker cannot be negative")

    def require_ray(self) -> None:
        """Fail before any work (before an index is even created) when Ray is not installed."""
        import_ray()
