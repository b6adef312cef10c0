"""Encoding in a child process, so the process that writes an index never imports torch.

Why: an indexing run frees its encoder's model before a large tier merge (``Encoder.release``), but the libraries
stay imported, and torch with sentence-transformers keeps about 0.6 GB resident that no call can give back
(docs/benchmarks.md, "Build peak RSS with the real encoder", probe: 0.73 GB after release against 0.13 GB
for kosearch alone). A million-unit build's merge holds the vectors, the graph, and those 0.6 GB. With
``encoder_process="child"`` (``kosearch index --encoder-process child``) the model lives in a process of its
own: a fresh interpreter (``sys.executable``), as multiprocessing's ``spawn`` context starts, talking over a
``multiprocessing.connection.Connection`` on a socket pair. Nothing of the parent is copied, and the parent
imports neither torch nor sentence-transformers. Unlike ``spawn``, the child does not re-run the parent's
``__main__``, so a script that indexes at top level (no ``if __name__ == "__main__"`` guard) works
unchanged. ``release`` ends that process, so all of its memory goes back to the operating system; the next
encode starts a new one (seconds, against a merge's minutes).

:class:`ChildProcessEncoder` offers what indexing, search and the store read off an
:class:`~kosearch.encoders.encoder.Encoder`: ``encode_documents``, ``encode_queries``, ``warm_up``,
``release``, and the facts an index records (``name``, ``fingerprint``, ``dimension``, ``prompts``,
``vector_family``, ``encoder_backend``, ``precision``, ``device``). The facts are computed in the child
when it first starts and kept here. The child gets the encoder's settings (model name or path, device,
precision, encoder backend, batch size), never a pickled model, and builds an ``Encoder`` from them. So
its vectors are the ones an ``Encoder`` with those settings computes in this process, bit for bit: float32
arrays, sent back through a pipe.

Failures: an error raised in the child (a model that cannot be loaded, a bad device) is raised here as the
same exception with the same message. A child that dies (killed, out of memory) is noticed by polling the
pipe and checking that the process is alive, and is reported as one :class:`~kosearch.errors.KosearchError`
line, never a hang. The child does not outlive this process: it is ended when its encoder is released,
closed (``Index.close``), garbage-collected or when this process exits (``weakref.finalize``), and it ends
itself when this process dies without a word (its socket reads end of file). It ignores Ctrl-C, which
reaches the whole process group: this process decides, and a call interrupted half-way ends the child
rather than leave an answer owed to the next request.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from kosearch.encoders.backends import vector_family
from kosearch.errors import KosearchError

AUTO_CHILD_BYTES = 16 << 20
"""``auto`` runs the model in a child when the files an indexing run would read (the documents stage's
discovery: supported formats, no hidden or ignored paths) hold this many bytes or more: 16 MiB, about
300,000 sentences of plain Korean text (PDF, DOCX and HWP hold less text per byte). Below it an index's
merges are Flat and small, and the model's memory is the peak either way; from about a million sentences
on, the torch libraries an in-process run cannot free (0.6 GB) sit on top of an HNSW merge
(docs/benchmarks.md, sections g, i and k). A child costs a start of about 6 s per 100,000 texts and per
large merge: noise beside the minutes such a folder takes."""

ENCODER_PROCESSES: dict[str, str] = {
    "auto": f"child when the documents to index hold {AUTO_CHILD_BYTES >> 20} MiB or more, else in (the default "
    "of kosearch index; from the Python API, auto is in)",
    "in": "the model runs in the indexing process",
    "child": "the model runs in a child process that exits before each large merge, so the writer never imports "
    "torch (peak memory of large builds; vectors identical)",
}
DEFAULT_ENCODER_PROCESS = "auto"
ENCODER_PROCESS_HELP = "Where the encoder's model runs: " + "; ".join(
    f"{name}: {help_text}" for name, help_text in ENCODER_PROCESSES.items()
) + "."
"""The CLI's help text for ``--encoder-process``, derived from the table above."""

CHILD_ENVIRONMENT: dict[str, str] = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "8"}
"""Settings the child starts with unless this process's environment has them. oneDNN (torch's CPU kernels)
keeps up to 1,024 compiled primitives, one per shape met, and a build meets a new sequence length with
almost every batch. Measured over calls 2-5 of 8,192 sentences of a build (bf16, with ``Encoder``'s trim;
docs/benchmarks.md, section k): the resident size after a call grew by 0.09 GB with the default cache and
0.03 GB with eight entries, the high-water mark reached 1.72 GB and 1.51 GB, for 6.5% of the encoding speed."""
RECYCLE_AFTER_TEXTS = 100_000
"""A child that has encoded this many texts is ended after its answer, and the next encode starts a fresh
one, as long-lived workers are recycled elsewhere (gunicorn's ``max_requests``, Celery's
``max_tasks_per_child``). Even with the setting above and ``Encoder``'s trim after each batch, the
high-water mark of a child encoding batch after batch keeps rising (in a million-sentence build: about
+0.2 GB over its first ten minutes, still rising). A restart costs about 6 s; 100,000 texts take minutes
to encode on a CPU (one checkpoint of ``kosearch index``)."""

POLL_SECONDS = 0.5
"""How often a wait for the child checks that it is still alive."""
STOP_SECONDS = 10.0
"""How long ``release`` waits for the child to exit on its own before terminating it."""


def encoder_process(name: str | None, documents_bytes: int | None = None) -> str:
    """Where the model runs, ``"in"`` or ``"child"``: ``name`` checked (None: the default), ``auto`` decided
    by ``documents_bytes``, the size of the files about to be indexed (unknown: ``in``), or a
    :class:`KosearchError` listing the choices."""
    if decided_by_size(name):
        return "child" if documents_bytes is not None and documents_bytes >= AUTO_CHILD_BYTES else "in"
    return _checked(name)


def decided_by_size(name: str | None) -> bool:
    """Whether ``name`` (None: the default) is ``auto``, which needs the documents' size; checked as above."""
    return _checked(name) == "auto"


def _checked(name: str | None) -> str:
    key = (name or DEFAULT_ENCODER_PROCESS).strip().lower()
    if key not in ENCODER_PROCESSES:
        raise KosearchError(
            f"Unknown encoder process {name!r}; use one of {', '.join(ENCODER_PROCESSES)} (--encoder-process)."
        )
    return key


@dataclass(frozen=True)
class EncoderSettings:
    """What the child builds its :class:`~kosearch.encoders.encoder.Encoder` from (the constructor's arguments)."""

    model: str | None = None
    device: str | None = None
    batch_size: int = 64
    encoder_backend: str | None = None
    precision: str | None = None
    torch_threads: int | None = None
    """The parent's ``torch.get_num_threads()`` when it has torch imported (its setting, if it made one, is
    the child's too: a matrix product's rounding can depend on how many threads split it); None: torch's default."""

    def build(self):
        from kosearch.encoders.encoder import Encoder

        if self.torch_threads is not None:
            import torch

            torch.set_num_threads(self.torch_threads)
        options = asdict(self)
        del options["torch_threads"]
        return Encoder(**options)


_FACTS = ("name", "source", "device", "precision", "encoder_backend", "batch_size", "dimension", "prompts",
          "fingerprint", "folder")
_METHODS = frozenset({"encode_documents", "encode_queries", "warm_up"})


class ChildProcessEncoder:
    """An encoder whose model runs in a child process; see the module docstring.

    Takes the arguments of :class:`~kosearch.encoders.encoder.Encoder` and starts the child at once, so a
    model that cannot be loaded is refused here, as ``Encoder`` refuses it.

    >>> with ChildProcessEncoder(device="cpu") as encoder:       # bundled multilingual-e5-small
    ...     encoder.encode_documents(["치타가 먹이를 쫓는다"]).shape
    (1, 384)
    """

    in_child_process = True
    """What front ends read to say where the model runs (an :class:`Encoder` has no such attribute)."""

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str | None = None,
        batch_size: int = 64,
        encoder_backend: str | None = None,
        precision: str | None = None,
    ) -> None:
        torch = sys.modules.get("torch")
        self._settings = EncoderSettings(
            None if model is None else str(model), device, batch_size, encoder_backend, precision,
            torch.get_num_threads() if torch is not None else None,
        )
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._connection: Connection | None = None
        self._end_child: weakref.finalize | None = None
        self._texts_encoded = 0
        """Texts the running child has encoded (``RECYCLE_AFTER_TEXTS``)."""
        facts = self._start()
        self.name: str = facts["name"]
        self.source: str = facts["source"]
        self.device: str = facts["device"]
        self.precision: str = facts["precision"]
        self.encoder_backend: str = facts["encoder_backend"]
        self.batch_size: int = facts["batch_size"]
        self.dimension: int = facts["dimension"]
        self._prompts: dict[str, str] = facts["prompts"]
        self.fingerprint: str = facts["fingerprint"]
        self.folder: Path | None = facts["folder"]
        """The local folder the child loaded the weights from (a hub id's snapshot), as ``Encoder.folder``."""
        # A restarted child resolves nothing again: the same device and precision as the first.
        self._settings = replace(self._settings, device=self.device, precision=self.precision)

    @property
    def prompts(self) -> dict[str, str]:
        return dict(self._prompts)

    @property
    def vector_family(self) -> str | None:
        """As :attr:`Encoder.vector_family <kosearch.encoders.encoder.Encoder.vector_family>`."""
        return vector_family(self.encoder_backend)

    @property
    def running(self) -> bool:
        """Whether a child process (and so the model, once used) is resident now."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id, or None when none is running (for memory accounting)."""
        return self._process.pid if self._process is not None else None

    def encode_documents(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress_bar: bool = False
    ) -> np.ndarray:
        """As :meth:`Encoder.encode_documents <kosearch.encoders.encoder.Encoder.encode_documents>`, in the child."""
        return self._call("encode_documents", list(texts), batch_size, show_progress_bar)

    def encode_queries(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress_bar: bool = False
    ) -> np.ndarray:
        """As :meth:`Encoder.encode_queries <kosearch.encoders.encoder.Encoder.encode_queries>`, in the child."""
        return self._call("encode_queries", list(texts), batch_size, show_progress_bar)

    def warm_up(self) -> None:
        self._call("warm_up")

    def release(self) -> None:
        """End the child: its model, its torch and everything else it holds go back to the operating system.

        The next encode starts a new child (seconds). The facts read at the first start are kept, so the
        vectors do not change.
        """
        with self._lock:
            self._stop()

    close = release

    def __enter__(self) -> ChildProcessEncoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return (
            f"ChildProcessEncoder(name={self.name!r}, device={self.device!r}, "
            f"encoder_backend={self.encoder_backend!r}, precision={self.precision!r}, dimension={self.dimension})"
        )

    # -- the child ------------------------------------------------------------------------------------------

    def _start(self) -> dict[str, Any]:
        # A fresh interpreter, as multiprocessing's "spawn" starts, but without re-running the parent's
        # __main__ in it (spawn does, which breaks a script that builds an index without the
        # ``if __name__ == "__main__"`` guard). It sees the parent's sys.path, as spawn's child does.
        parent_end, child_end = socket.socketpair()
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD_PROGRAM, str(child_end.fileno()), json.dumps(sys.path)],
            pass_fds=[child_end.fileno()], stdin=subprocess.DEVNULL, close_fds=True, env=child_environment(),
        )
        child_end.close()  # the child's end lives in the child only, so its death reads as end of file here
        connection = Connection(parent_end.detach())
        self._process, self._connection = process, connection
        self._texts_encoded = 0
        self._end_child = weakref.finalize(self, _end, process, connection)
        try:
            connection.send(self._settings)
            return self._reply()
        except BaseException:  # the child could not build its encoder, or died: nothing is left running
            self._stop()
            raise

    def _call(self, method: str, *args: Any) -> Any:
        with self._lock:
            if self._process is None:
                self._start()
            assert self._connection is not None
            try:
                self._connection.send((method, args))
            except (BrokenPipeError, ConnectionError, OSError):
                raise self._died() from None
            except BaseException:  # interrupted half-way through a request: the child is not reused
                self._abandon()
                raise
            reply = self._reply()
            if args and isinstance(args[0], list):
                self._texts_encoded += len(args[0])
                if self._texts_encoded >= RECYCLE_AFTER_TEXTS:
                    self._stop()  # the next encode starts a fresh child
            return reply

    def _reply(self) -> Any:
        """The child's answer to the last request (or to its start), raising what it raised."""
        connection, process = self._connection, self._process
        assert connection is not None and process is not None
        try:
            reply = _next_message(connection, process)
        except (EOFError, ConnectionError, OSError):
            raise self._died() from None
        except BaseException:
            # Interrupted (Ctrl-C) with the answer still owed: reused, the child would hand that answer to
            # the next request. It is ended instead; the next encode starts a new one.
            self._abandon()
            raise
        if reply is None:
            raise self._died()
        kind, value = reply
        if kind == "error":
            raise value
        return value

    def _died(self) -> KosearchError:
        """The one-line error for a child that ended without answering; the child is cleaned up."""
        process = self._process
        code = None
        if process is not None:
            try:
                code = process.wait(1)
            except subprocess.TimeoutExpired:  # the pipe broke but the child lives on: _stop ends it
                pass
        self._stop()
        if code is not None and code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
            how += ", e.g. for lack of memory" if code == -signal.SIGKILL else ""
        else:
            how = f"exit code {code}"
        return KosearchError(
            f"the encoder's child process ended without answering ({how}); an indexing run keeps its last "
            "checkpoint: run it again, or encode in this process (--encoder-process in)"
        )

    def _abandon(self) -> None:
        """End the child now, without waiting for the answer it may be computing."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
        self._stop()

    def _stop(self) -> None:
        if self._end_child is not None:
            self._end_child()  # runs _end once; the finalizer is then dead
        self._process = self._connection = self._end_child = None


def _next_message(connection: Connection, process: subprocess.Popen) -> Any:
    """The child's next message, or None when it exited without sending one; never waits on a dead child."""
    while not connection.poll(POLL_SECONDS):
        if process.poll() is not None and not connection.poll(0):
            return None
    return connection.recv()


def _end(process: subprocess.Popen, connection: Connection) -> None:
    """Ask the child to exit, then make sure it does; also run when its encoder is garbage-collected, and at
    this process's exit (``weakref.finalize``), so the child does not outlive it."""
    try:
        connection.send(None)
    except (BrokenPipeError, ConnectionError, OSError, ValueError):
        pass
    for stop in (None, process.terminate, process.kill):
        if stop is not None:
            stop()
        try:
            process.wait(STOP_SECONDS)
            break
        except subprocess.TimeoutExpired:
            continue
    connection.close()


def child_environment() -> dict[str, str]:
    """This process's environment with :data:`CHILD_ENVIRONMENT`'s settings where it has none of its own."""
    return {**CHILD_ENVIRONMENT, **os.environ}


_CHILD_PROGRAM = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[2]); "
    "from kosearch.encoders.child_process import child_main; child_main(int(sys.argv[1]))"
)


def child_main(fd: int) -> None:
    """The child's entry point: its end of the socket pair, then :func:`serve`.

    Ctrl-C in a terminal reaches the whole process group; the parent decides what it means (an indexing run
    stops at its last checkpoint) and ends the child, which therefore ignores it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    connection = Connection(fd)
    try:
        settings = connection.recv()
    except (EOFError, ConnectionError, OSError):
        return
    serve(connection, settings)


def serve(connection: Connection, settings: EncoderSettings) -> None:
    """The child's loop: build the encoder, send its facts, then answer ``(method, args)`` requests until
    ``None`` arrives or the parent's end closes."""
    try:
        encoder = settings.build()
        facts = {name: getattr(encoder, name) for name in _FACTS}
    except BaseException as error:  # noqa: BLE001 - handed to the parent, which raises it
        connection.send(("error", _portable(error)))
        return
    connection.send(("ready", facts))
    while True:
        try:
            request = connection.recv()
        except (EOFError, ConnectionError, OSError):
            return  # the parent is gone
        if request is None:
            return
        method, args = request
        try:
            if method not in _METHODS:
                raise KosearchError(f"the encoder's child process has no method {method!r}")
            reply = ("ok", getattr(encoder, method)(*args))
        except Exception as error:  # noqa: BLE001 - handed to the parent, which raises it
            reply = ("error", _portable(error))
        try:
            connection.send(reply)
        except (BrokenPipeError, ConnectionError, OSError):
            return


def _portable(error: BaseException) -> BaseException:
    """``error`` itself when it survives pickling (kosearch's errors do), else a KosearchError with its text."""
    error.__traceback__ = None
    try:
        copy = pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - an exception type that cannot travel
        return KosearchError(f"{type(error).__name__}: {error}")
    return copy if str(copy) == str(error) else KosearchError(f"{type(error).__name__}: {error}")


_DEVICE_PROGRAM = """
import json, sys
sys.path[:] = json.loads(sys.argv[1])
from kosearch.encoders.device import resolve_device
from kosearch.errors import KosearchError
try:
    print(resolve_device(sys.argv[2] or None))
except KosearchError as error:
    print(error, file=sys.stderr)
    sys.exit(2)
"""


def resolve_device_elsewhere(device: str | None) -> str:
    """:func:`~kosearch.encoders.device.resolve_device` without importing torch in this process.

    Where the answer needs torch (``auto`` with a CUDA or ROCm build of torch installed, ``cuda:N``,
    ``mps``), a short-lived child imports it and answers (seconds, once per opened index); ``cpu``, and
    ``auto`` where torch could not see a GPU, are answered here, as ``resolve_device`` answers them.
    """
    from kosearch.encoders.device import resolve_device, torch_may_see_a_gpu

    requested = (device or "auto").strip().lower()
    if "torch" in sys.modules or requested == "cpu" or (requested == "auto" and not torch_may_see_a_gpu()):
        return resolve_device(device)
    result = subprocess.run(
        [sys.executable, "-c", _DEVICE_PROGRAM, json.dumps(sys.path), device or ""],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    lines = (result.stdout if result.returncode == 0 else result.stderr).strip().splitlines()
    if result.returncode == 0 and lines:
        return lines[-1]
    raise KosearchError(lines[-1] if lines else f"could not check device {device!r} (exit code {result.returncode})")
