"""``AnchoredRankingLoss``: MultipleNegativesRankingLoss plus a pull towards the frozen base model's embeddings.

Adapting an already trained retriever on a few thousand mined queries forgets quickly: on the chatbot answers
folder three passes of plain MultipleNegativesRankingLoss took KorSTS from 76.85 to 72.10 and in-domain retrieval
below the base (docs/training.md, "Passes over the mined examples"). The remedy measured here is label-free
embedding distillation from the model being adapted: every text of the batch (query, positive, hard negative) is
also encoded by a frozen copy of the base model, and the student pays ``weight x (1 - cos(student, base))``,
averaged over the columns. It is the embedding-matching term of EmbedDistill (Kim et al., 2023) and of
sentence-transformers' ``EmbedDistillLoss`` / ``MSELoss`` (Reimers & Gurevych, 2020), with the model's own
starting point as the teacher, as in "learning without forgetting" (Li & Hoiem, 2017): the ranking term moves the
embeddings towards the domain's queries, the anchor keeps them near the base where the mined queries say nothing.

The base embeddings are computed on the fly (one extra forward pass without gradients, about a fifth of a CPU
step) rather than stored as a ``label`` column, so a budget that trains a fraction of a large folder's examples
does not first encode all of them.

Inputs: (anchor, positive[, negative]) text columns, as MultipleNegativesRankingLoss.

Example::

    import copy
    base = copy.deepcopy(model)
    loss = AnchoredRankingLoss(model, base, scale=20.0, weight=10.0)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from torch import Tensor, nn


class AnchoredRankingLoss(nn.Module):
    """MultipleNegativesRankingLoss + ``weight`` x mean cosine distance to the frozen ``base`` model's embeddings."""

    def __init__(self, model: SentenceTransformer, base: SentenceTransformer, *, scale: float, weight: float) -> None:
        super().__init__()
        self.model = model
        self.ranking = MultipleNegativesRankingLoss(model, scale=scale)
        self.weight = weight
        # Kept outside the module tree: the trainer's .train() must not switch on the teacher's dropout, and the
        # optimizer must never see its weights.
        self._base = [base.eval().requires_grad_(False)]
        self.last_anchor = 0.0
        """The anchor term of the last batch (1 - cos, before ``weight``), for logs and tests."""

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        features = list(sentence_features)
        # The inputs alone, copied before the student's forward pass writes its outputs into the dicts.
        inputs = [dict(column) for column in features]
        embeddings = embed_columns(self.model, features)
        loss = self.ranking.compute_loss_from_embeddings(embeddings, labels)
        if self.weight <= 0:
            return loss
        base = self._base[0]
        if base.device != self.model.device:
            base.to(self.model.device)
        base.eval()
        with torch.no_grad():
            targets = embed_columns(base, inputs)
        distance = torch.stack(
            [
                (1 - nn.functional.cosine_similarity(student, target.to(student.dtype), dim=-1)).mean()
                for student, target in zip(embeddings, targets)
            ]
        ).mean()
        self.last_anchor = float(distance.detach())
        return loss + self.weight * distance

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.ranking.scale, "anchor_weight": self.weight}
