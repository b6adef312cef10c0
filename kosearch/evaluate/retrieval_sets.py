"""Which retrieval set a run scores: a BEIR folder, or a paraphrase set built from an STS file.

The choice used to be made in the CLI; it lives here so that ``kosearch evaluate retrieval``, the
Python API and the bench scripts build the same set from the same arguments (the CLI only parses
and prints).
"""

from __future__ import annotations

from pathlib import Path

from kosearch.data.beir import BeirDataset, load_beir, sts_to_retrieval, write_beir
from kosearch.data.sts import read_sts
from kosearch.errors import KosearchError


def retrieval_set(
    data: str | Path | None = None,
    *,
    split: str = "test",
    from_sts: str | Path | None = None,
    write_beir_to: str | Path | None = None,
) -> BeirDataset:
    """Read the BEIR folder ``data``, or build a paraphrase set from the STS file ``from_sts``.

    With ``write_beir_to`` the set built from STS is also written there in BEIR layout (so it can be
    indexed later), and the returned set's ``folder`` is that folder.
    """
    if (data is None) == (from_sts is None):
        raise KosearchError("give exactly one of --data (a BEIR folder) and --from-sts (an STS file).")
    if write_beir_to is not None and from_sts is None:
        raise KosearchError("--write-beir writes the set built by --from-sts; add --from-sts FILE.")
    if from_sts is None:
        assert data is not None
        return load_beir(data, split)
    from_sts = Path(from_sts)
    dataset = sts_to_retrieval(read_sts(from_sts), name=from_sts.name)
    if write_beir_to is not None:
        dataset.folder = write_beir(dataset, write_beir_to)
    return dataset
