"""``adapt``: teach an encoder a domain from an unlabelled document folder, within a time budget.

The folder is read exactly as ``kosearch index`` reads it (:func:`kosearch.documents.iter_documents` in passage
mode: every format, the same decoding and splitting), so the encoder learns on the passages it will later index.

By default the encoder itself is not trained. The model's mean pooling is weighted by each token's inverse document
frequency in the folder (``word_weights``, ``--word-weights``; :mod:`kosearch.train.word_weights`), a label-free step
of seconds that lifted in-domain dense and hybrid retrieval and KorSTS alike on both development sets
(docs/training.md, "Domain token weights"); the adapted folder keeps it as a ``WordWeights`` module. Then a linear
map after pooling (``linear_map``, ``--linear-map``; :mod:`kosearch.train.linear_map`) is trained on the examples
described next, encoded once (minutes) and trained on as cached vectors (seconds), starting at and pulled towards
a shrunk whitening of those vectors; docs/training.md, "The map anchored at a whitening".

The examples :mod:`kosearch.train.mining` makes from the passages without a generator model: inverse-cloze queries
(Lee et al., 2019) and salient-noun keyword queries, each kept only when the corpus's own BM25 finds its passage again
(round-trip filter, Dai et al., 2022, Promptagator), with a BM25-ranked hard negative (Karpukhin et al., 2020, DPR;
Wang et al., 2022, GPL). With ``fine_tune`` (``--fine-tune``), instead of the map, the encoder is trained on them,
under the weighted pooling, with MultipleNegativesRankingLoss (Henderson et al., 2017): each query must rank its
passage above its hard negative and every other passage in the batch. Not the default: it helped the chatbot set and
hurt the movie-review set (:data:`DEFAULT_FINE_TUNE`).

Two options change that loss (measured in docs/training.md, "Recipe experiments, 2026-12-07"): ``anchor_weight``
(``--anchor-weight``) adds a pull towards a frozen copy of the base model's embeddings of every text of the batch
(:mod:`kosearch.train.anchored_loss`), so the examples can move the encoder towards the domain without undoing what
it knew; ``hard_negatives=False`` (``--no-hard-negatives``) trains with in-batch negatives only. A third changes the
examples: ``question_share`` (``--question-share``, off by default) writes that share of the keyword queries as
generic Korean questions (:func:`kosearch.train.mining.question_query`; measured in "Recipe evidence, 2026-12-07
(second session)": no measurable gain on the chatbot set).

Queries get the base model's query prompt and passages its document prompt (``query: `` / ``passage: `` for the
bundled e5), so what is trained is what ``kosearch`` search uses: queries encoded as queries, the index as
documents.

With ``config.max_minutes`` the whole command (reading, mining, measuring, training, saving) is planned to fit.
Without ``--fine-tune`` the budget stops the encoding of the map's examples in time (:func:`_add_folder_map`); with
it :mod:`kosearch.train.budget` measures a step and picks the sequence length and number of steps, and the plan is
saved with every checkpoint, so ``--resume`` continues the same schedule.

Example::

    from kosearch.train import TrainingConfig, train_adapt
    train_adapt(TrainingConfig(output="runs/law"), "~/law-docs")                  # token weights + linear map
    train_adapt(TrainingConfig(output="runs/law-tuned", max_minutes=60), "~/law-docs", fine_tune=True)  # + training
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from transformers import TrainerCallback

from kosearch.errors import KosearchError
from kosearch.train.anchored_loss import AnchoredRankingLoss
from kosearch.train.budget import (
    CHECKPOINT_SAVE_FACTOR,
    MIN_STEPS,
    BudgetPlan,
    auto_length,
    finish_seconds,
    measure_save_seconds,
    measure_step_seconds,
    plan_budget,
    process_seconds,
    steps_that_fit,
)
from kosearch.train.checkpoints import check_output, last_checkpoint
from kosearch.train.config import TrainingConfig
from kosearch.train.hardware import cuda_available, training_precision
from kosearch.train.linear_map import (
    MAP_ANCHOR_SHRINKAGE,
    MAP_BATCH,
    MAP_EPOCHS,
    MAP_EXAMPLES,
    MAP_L2,
    MAP_LEARNING_RATE,
    MAP_PASSAGES,
    MAP_SCALE,
    add_linear_map,
    encode_examples,
    linear_map_problem,
    shrunk_whitening,
    train_linear_map,
)
from kosearch.train.mining import MiningReport, Passage, QueryKind, TrainingExample, mine_examples
from kosearch.train.models import resolve_base_model
from kosearch.train.trainer import base_sts_evaluation, run_training
from kosearch.train.types import DataFile, Recipe, TrainingPhase, TrainResult
from kosearch.train.word_weights import (
    IDF_POWER,
    add_word_weights,
    has_saved_word_weights,
    has_word_weights,
    insert_word_weights,
    saved_word_weights,
    word_weights_problem,
)

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

DEFAULT_LEARNING_RATE = 1e-5
"""Half GPL's 2e-5 for adapting an already trained retriever, with the anchor below: larger rates undo what the base
model knows. Measured (docs/training.md, "Recipe evidence, 2026-12-07"): with the anchor, one pass, on the chatbot
set dense nDCG@10 +1.20/+1.21 over the base on two seeds (2e-5 without anchor: +0.83) and KorSTS +0.49/+0.38 (-0.67/
-0.74); on NSMC at 209 steps dense -0.21 and KorSTS -2.07 (2e-5 without anchor: -2.20 and -5.26)."""
DEFAULT_SCALE = MAP_SCALE
"""Similarity scale (1 / temperature) of the ranking loss, for the fine-tuning and the linear map alike (``--scale``)."""
DEFAULT_ANCHOR_WEIGHT = 10.0
"""Weight of the pull towards the base model's embeddings (:mod:`kosearch.train.anchored_loss`); 0 turns it off.
At 10 (with :data:`DEFAULT_LEARNING_RATE`) it was at least as good as no anchor on every measure of both development
sets (figures at :data:`DEFAULT_LEARNING_RATE`); it costs a frozen copy of the base model in memory and one more
forward pass per step (about 1.5x the step time)."""
DEFAULT_HARD_NEGATIVES = True
"""Each query's BM25-mined hard negative goes into its batch, besides the in-batch negatives."""
DEFAULT_WORD_WEIGHTS = True
"""Weight the pooling by the folder's inverse document frequencies (:mod:`kosearch.train.word_weights`)."""
DEFAULT_FINE_TUNE = False
"""Train on the mined queries after the token weights (``--fine-tune``). Off by default: measured through a kosearch
index (docs/training.md, "Domain token weights"), the weights alone raised dense and hybrid retrieval and KorSTS on
both development sets, while a training pass on top helped the chatbot set a little (dense +0.66 over the weights
alone, within one standard error) and hurt the movie-review set (dense -1.6, hybrid -2.1 against the weights alone;
hybrid -1.5 against the base model, which the goal forbids)."""
DEFAULT_LINEAR_MAP = True
"""Without ``--fine-tune``, also train a linear map after pooling on the folder's mined queries
(:mod:`kosearch.train.linear_map`): measured through a kosearch index in docs/training.md, "A trained linear map" and
"The map anchored at a whitening"."""
MAP_FINISH_SECONDS = 30.0
"""With ``--max-minutes``, encoding the map's examples stops this long before the budget ends (and earlier by the
time the card's final STS row will take to encode), for the map's training, the save and the card."""
DEFAULT_QUESTION_SHARE = 0.0
"""Share of keyword queries written as generic questions instead (:func:`kosearch.train.mining.question_query`)."""
TOKEN_WEIGHTS_PARAMETER = f"idf ** {IDF_POWER:g} from the folder (WordWeights before Pooling)"
"""The card's "token weights" row for a model that has them."""
QUERY_KINDS: tuple[QueryKind, ...] = ("ict", "keywords", "question")
PHASE = "adapt"
MIN_EXAMPLES = 8
MIN_MAP_EXAMPLES = MAP_BATCH
"""Fewest encoded examples the linear map trains on: one full batch. Fewer make a handful of Adam steps that move
every entry by about the learning rate whatever the gradient; the development folders gave 2,579 and 8,000."""


def read_passages(
    folder: str | os.PathLike[str], *, text_fields: list[str] | None = None
) -> tuple[list[Passage], list[str]]:
    """The folder's passages as the documents stage splits them (passage mode), and one line per skipped file."""
    from kosearch.documents import Document, iter_documents

    root = existing_folder(folder)
    passages: list[Passage] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for item in iter_documents(root, mode="passage", text_fields=text_fields):
        if not isinstance(item, Document):
            skipped.append(f"{item.path}: {item.reason}")
            continue
        for sentence in item.sentences:
            text = sentence.text.strip()
            if text and text not in seen:
                seen.add(text)
                passages.append(Passage(text, item.relpath))
    return passages, skipped


def existing_folder(folder: str | os.PathLike[str]) -> Path:
    """``folder`` as a path, refused with the way out when it does not exist (before any model is loaded)."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise KosearchError(f"{root} does not exist: pass the folder of documents to adapt to with --documents.")
    return root


def examples_dataset(examples: list[TrainingExample], *, hard_negatives: bool = True) -> Dataset:
    """(anchor, positive[, negative]) columns, the order MultipleNegativesRankingLoss reads them in."""
    from datasets import Dataset

    columns = {
        "anchor": [example.query for example in examples],
        "positive": [example.positive for example in examples],
    }
    if hard_negatives:
        columns["negative"] = [example.negative for example in examples]
    return Dataset.from_dict(columns)


def train_adapt(
    config: TrainingConfig,
    documents: str | os.PathLike[str],
    *,
    text_fields: list[str] | None = None,
    scale: float | None = None,
    anchor_weight: float | None = None,
    hard_negatives: bool | None = None,
    question_share: float | None = None,
    word_weights: bool | None = None,
    fine_tune: bool | None = None,
    linear_map: bool | None = None,
    query_kinds: tuple[QueryKind, ...] = QUERY_KINDS,
    from_process_start: bool = False,
) -> TrainResult:
    """Adapt the base model to the passages of the folder ``documents`` (see the module docstring).

    ``from_process_start``: the budget counts from this process's start, not from this call (the command line sets
    it, so ``--max-minutes`` includes importing torch: :func:`kosearch.train.budget.process_seconds`).

    ``config.max_minutes`` is the budget of the whole call. With ``fine_tune``, without a budget,
    ``config.max_steps`` or ``config.epochs`` decide the length as in every recipe, and ``config.max_seq_length``
    None lets the planner choose the length; without ``fine_tune``, ``config.batch_size`` is the encoding batch
    (the map trains in batches of :data:`~kosearch.train.linear_map.MAP_BATCH`).

    Raises:
        KosearchError: the folder gives too few passages to make examples from; an option that only changes the
            fine-tuning is given without it; the model cannot take the weights or the map; nothing could be adapted;
            or the output is refused (see :func:`kosearch.train.checkpoints.check_output`).
    """
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    started = time.perf_counter() - (process_seconds() if from_process_start else 0.0)
    fine_tune = DEFAULT_FINE_TUNE if fine_tune is None else fine_tune
    word_weights = DEFAULT_WORD_WEIGHTS if word_weights is None else word_weights
    if fine_tune and linear_map:
        raise KosearchError("--linear-map is trained on the model without fine-tuning (--fine-tune trains the encoder "
                            "itself): leave one of them out.")
    linear_map = DEFAULT_LINEAR_MAP and not fine_tune if linear_map is None else linear_map
    if not fine_tune:
        _check_without_training_options(config, word_weights or linear_map, anchor_weight=anchor_weight,
                                        hard_negatives=hard_negatives, question_share=question_share,
                                        lr=config.learning_rate, max_steps=config.max_steps)
    scale = DEFAULT_SCALE if scale is None else scale
    anchor_weight = DEFAULT_ANCHOR_WEIGHT if anchor_weight is None else anchor_weight
    hard_negatives = DEFAULT_HARD_NEGATIVES if hard_negatives is None else hard_negatives
    question_share = DEFAULT_QUESTION_SHARE if question_share is None else question_share
    check_output(config, [PHASE] if fine_tune else [])
    existing_folder(documents)
    model = _base_model(config)
    if word_weights:  # refused before any work is spent on the folder or the examples
        _check_word_weights(model, fine_tune)
    resumed_weights = _resumed_word_weights(config, word_weights, has_word_weights(model)) if fine_tune else None
    if linear_map and (problem := linear_map_problem(model)) is not None:
        raise KosearchError(f"Cannot add a linear map to this model: {problem}. Pass --no-linear-map, or adapt the "
                            "base model it came from.")
    passages, skipped = read_passages(documents, text_fields=text_fields)
    if len(passages) < MIN_EXAMPLES:
        raise KosearchError(
            f"{documents} gave {len(passages)} passages{_unread(skipped)}; adaptation needs at least {MIN_EXAMPLES}. "
            "Point --documents at a larger folder of the domain's text."
        )
    if not fine_tune:
        return _without_training(config, model, documents, passages, skipped, word_weights=word_weights,
                                 linear_map=linear_map, scale=scale, started=started)
    examples, report = mine_examples(passages, seed=config.seed, question_share=question_share)
    examples = [example for example in examples if example.kind in query_kinds]
    if len(examples) < MIN_EXAMPLES:
        raise KosearchError(
            f"{documents} gave {len(passages)} passages and {len(examples)} training examples{_unread(skipped)}; "
            f"adaptation needs at least {MIN_EXAMPLES}. Point --documents at a larger folder of the domain's text."
        )
    learning_rate = config.learning_rate or DEFAULT_LEARNING_RATE

    notes = [f"Mined examples: {report.summary()}."]
    if skipped:
        notes.append(f"{len(skipped)} file(s) of the folder could not be read, e.g. {_unread_example(skipped)}.")
    base_evaluation = None
    if word_weights:
        base_evaluation = base_sts_evaluation(model, config)  # the card's base row: the model before any change
        if resumed_weights is not None:
            insert_word_weights(model, resumed_weights)
            notes.append("Token weights: those of the run being resumed (its checkpoint), before pooling.")
        else:
            notes.append(_add_folder_weights(model, passages))
    base = copy.deepcopy(model) if anchor_weight > 0 else None

    def loss(model: SentenceTransformer) -> Any:
        if base is not None:
            return AnchoredRankingLoss(model, base, scale=scale, weight=anchor_weight)
        return MultipleNegativesRankingLoss(model, scale=scale)

    plan = _plan(config, model, examples, loss, learning_rate, started, hard_negatives=hard_negatives)
    if plan is not None:
        config = dataclasses.replace(
            config, max_seq_length=plan.max_seq_length, max_steps=plan.steps, max_minutes=time_limit(plan) / 60
        )
        model.max_seq_length = plan.max_seq_length
        notes.append(
            f"Budget plan: {plan.steps} steps at {plan.max_seq_length} tokens in {plan.precision}, "
            f"{plan.seconds_per_step:.2f} s per measured step, {plan.save_seconds:.1f} s per model save, "
            f"{plan.train_seconds / 60:.1f} min of the budget for training and checkpoints; at most "
            f"{epoch_steps(len(examples), config.batch_size, config.epochs)} steps, {config.epochs:g} pass(es) over "
            f"the {len(examples):,} examples (--epochs)."
        )
    config = dataclasses.replace(config, extra_notes=[*config.extra_notes, *notes])
    recipe = Recipe(
        name="adapt",
        summary=(
            "Unsupervised domain adaptation for retrieval: inverse-cloze (Lee et al., 2019) and keyword queries "
            "mined from the folder's own passages, kept when the corpus's BM25 finds their passage again, with "
            "BM25 hard negatives (as in DPR and GPL), trained with MultipleNegativesRankingLoss."
        ),
        data=[_folder_data(documents, passages)],
        parameters={
            "loss": f"MultipleNegativesRankingLoss (scale {scale:g}), query prompt on queries"
            + (f", + {anchor_weight:g} x (1 - cos) to the base model's embeddings" if base is not None else "")
            + (" (with the token weights in)" if base is not None and word_weights else ""),
            "hard negatives": "BM25" if hard_negatives else "none (in-batch only)",
            "token weights": TOKEN_WEIGHTS_PARAMETER if word_weights else "none (the base model's pooling)",
            "examples": _examples_line(report, len(examples)),
            "budget": f"{plan.train_seconds / 60:.1f} min for training" if plan else None,
        },
    )
    phase = TrainingPhase(
        name=PHASE,
        train_dataset=examples_dataset(examples, hard_negatives=hard_negatives),
        loss=loss,
        learning_rate=learning_rate,
        no_duplicates=True,
        column_prompts={"anchor": "query", "positive": "document", "negative": "document"},
        callbacks=(lambda _loss: [PlanCheckpoint(plan)]) if plan else None,
    )
    return run_training(config, recipe, [phase], model=model, base_evaluation=base_evaluation)


def _without_training(
    config: TrainingConfig,
    model: SentenceTransformer,
    documents: str | os.PathLike[str],
    passages: list[Passage],
    skipped: list[str],
    *,
    word_weights: bool,
    linear_map: bool,
    scale: float,
    started: float,
) -> TrainResult:
    """The adapted model without training the encoder: the base ``model`` with the folder's token weights and the
    linear map trained on its mined queries (either may be off), saved with its card.

    Raises:
        KosearchError: the map was the only change asked for and could not be made.
    """
    base_evaluation = base_sts_evaluation(model, config)
    making = time.perf_counter()
    notes: list[str] = []
    parameters: dict[str, Any] = {"token weights": "none (the base model's pooling)"}
    parts = []
    if word_weights:
        notes.append(_add_folder_weights(model, passages))
        parameters["token weights"] = TOKEN_WEIGHTS_PARAMETER
        parts.append("the base model's mean pooling weighted by each token's inverse document frequency in the "
                     "folder (sentence-transformers' WordWeights)")
    if linear_map:
        deadline = None
        if config.max_minutes is not None:
            deadline = started + config.max_minutes * 60 - MAP_FINISH_SECONDS
        made = _add_folder_map(model, passages, config, deadline=deadline, scale=scale)
        notes.append(made.note)
        parameters["linear map"] = made.parameter
        if made.added:
            parts.append("a linear map after pooling (Dense), trained on inverse-cloze and keyword queries mined from "
                         "the folder with BM25 as the teacher, on vectors encoded once, started at and held near a "
                         "whitening of those vectors")
        elif not word_weights:
            raise KosearchError(f"Nothing was adapted: {made.note} {made.way_out}, or drop --no-word-weights.")
    notes.append("The encoder itself was not trained (pass --fine-tune to train it on queries mined from the "
                 "folder instead of the linear map).")
    if config.max_minutes is not None and not linear_map:
        notes.append("--max-minutes bounds training, and there was none: the token weights take seconds.")
    if skipped:
        notes.append(f"{len(skipped)} file(s) of the folder could not be read, e.g. {_unread_example(skipped)}.")
    recipe = Recipe(
        name="adapt",
        summary="Domain adaptation without training the encoder: " + "; and ".join(parts) + ".",
        data=[_folder_data(documents, passages)],
        parameters=parameters,
    )
    config = dataclasses.replace(config, extra_notes=[*config.extra_notes, *notes])
    return run_training(config, recipe, [], model=model, base_evaluation=base_evaluation,
                        prepared_seconds=time.perf_counter() - making)


@dataclasses.dataclass(frozen=True)
class _MapOutcome:
    added: bool
    note: str
    """The card's note: what the map was trained on, or why there is none."""
    parameter: str
    """The card's "linear map" row."""
    way_out: str = ""
    """Without a map: what to change so that there is one."""


def _add_folder_map(
    model: SentenceTransformer, passages: list[Passage], config: TrainingConfig, *, deadline: float | None,
    scale: float,
) -> _MapOutcome:
    """Mine (a sample of) the folder's passages, encode the examples until ``deadline`` and put the trained linear
    map into ``model``. Too few examples leave the model without a map, said in the note, not a failed run: the
    token weights are still made (:func:`_without_training` refuses a run that would then change nothing)."""
    import random

    def none(reason: str, way_out: str) -> _MapOutcome:
        return _MapOutcome(False, f"No linear map: {reason}.", f"none ({reason})", way_out)

    budget_way_out = "Pass a larger --max-minutes"
    if deadline is not None and time.perf_counter() > deadline:
        return none("--max-minutes ran out before its examples were mined", budget_way_out)
    sample = passages
    if len(passages) > MAP_PASSAGES:
        sample = random.Random(config.seed).sample(passages, MAP_PASSAGES)
    examples, report = mine_examples(sample, seed=config.seed)
    mined = len(examples)
    random.Random(config.seed).shuffle(examples)
    examples = examples[:MAP_EXAMPLES]
    tick = time.perf_counter()
    vectors = encode_examples(model, examples, deadline=deadline, reserve_texts=_scored_texts(config),
                              batch_size=config.batch_size)
    if len(vectors) < MIN_MAP_EXAMPLES:
        if mined < MIN_MAP_EXAMPLES:
            return none(f"the folder gave {mined} mined examples and the map needs {MIN_MAP_EXAMPLES}",
                        "Point --documents at a larger folder of the domain's text")
        return none(f"--max-minutes ran out after encoding {len(vectors)} of {len(examples)} mined examples, and the "
                    f"map needs {MIN_MAP_EXAMPLES}", budget_way_out)
    anchor = shrunk_whitening(np.vstack([vectors.queries, vectors.distinct_passages()]))
    matrix = train_linear_map(vectors.queries, vectors.positives, vectors.negatives, positive_ids=vectors.positive_ids,
                              negative_ids=vectors.negative_ids, anchor=anchor, scale=scale, seed=config.seed)
    add_linear_map(model, matrix)
    identity = np.eye(len(matrix))
    distance = (f"||W - anchor|| = {np.linalg.norm(matrix - anchor):.2f}, "
                f"||anchor - I|| = {np.linalg.norm(anchor - identity):.2f}")
    of_passages = f" of {len(sample):,} sampled passages" if sample is not passages else ""
    cut = (f" (--max-minutes stopped the encoding after {len(vectors):,} of {len(examples):,})"
           if len(vectors) < len(examples) else "")
    note = (f"Linear map: trained on {len(vectors):,} of the {mined:,} examples mined{of_passages}{cut} "
            f"({report.summary()}) in {time.perf_counter() - tick:.0f} s; {distance}.")
    return _MapOutcome(True, note, (
        f"Dense {len(matrix)}x{len(matrix)} + Normalize after pooling; started at and pulled (l2 {MAP_L2:g}) towards "
        f"the whitening of the examples' vectors (shrinkage {MAP_ANCHOR_SHRINKAGE:g}, mean not subtracted), "
        f"{MAP_EPOCHS} passes, batch {MAP_BATCH}, lr {MAP_LEARNING_RATE:g}, scale {scale:g}"))


def _scored_texts(config: TrainingConfig) -> int:
    """Texts the run still encodes after the map: the distinct sentences of the STS file scored for the card (as
    :func:`kosearch.evaluate.evaluate_sts` encodes them). A file that cannot be read counts 0 here; the final
    evaluation reports it."""
    from kosearch.data.sts import distinct_sentences, read_sts

    path = config.eval_test or config.dev
    if path is None:
        return 0
    try:
        return len(distinct_sentences(read_sts(path)))
    except (OSError, ValueError, KosearchError):
        return 0


def _add_folder_weights(model: SentenceTransformer, passages: list[Passage]) -> str:
    """Put the folder's token weights into ``model``; returns the card's note on them."""
    add_word_weights(model, (passage.text for passage in passages))
    return f"Token weights: idf ** {IDF_POWER:g} over the folder's {len(passages):,} passages, before pooling."


def _unread(skipped: list[str]) -> str:
    """The clause a too-few-passages refusal adds about files that could not be read (their reasons are the fix)."""
    if not skipped:
        return ""
    return f" ({len(skipped)} file(s) could not be read, e.g. {_unread_example(skipped)})"


def _unread_example(skipped: list[str]) -> str:
    """The skipped file to name: the first damaged or undecodable one, before a file of a type kosearch does not
    read (an image beside the documents); without its reason's closing full stop, for the sentence it goes in."""
    return next((line for line in skipped if ": unsupported file type " not in line), skipped[0]).rstrip(".")


def _folder_data(documents: str | os.PathLike[str], passages: list[Passage]) -> DataFile:
    return DataFile(str(documents), "passages (unlabelled), read as `kosearch index` reads them", len(passages))


def _check_word_weights(model: SentenceTransformer, fine_tune: bool) -> None:
    """A one-line refusal, with a way out that works, when the folder's token weights cannot go into ``model``."""
    problem = word_weights_problem(model)
    if problem is None:
        return
    way_out = (
        "Pass --no-word-weights to fine-tune without them." if fine_tune
        else "Adapt the base model it came from, or pass --no-word-weights (the linear map alone; with --fine-tune, "
             "fine-tuning without them)."
    )
    raise KosearchError(f"Cannot add the folder's token weights to this model: {problem}. {way_out}")


def _check_without_training_options(config: TrainingConfig, anything: bool, **training_only: object) -> None:
    """Refuse what would silently do nothing without ``--fine-tune``: the weights and the map are all that is made
    then (``anything``: at least one of them is on)."""
    if not anything:
        raise KosearchError("Nothing to adapt: --no-word-weights --no-linear-map without --fine-tune. Pass "
                            "--fine-tune, or keep the weights or the map.")
    if config.resume:
        raise KosearchError("--resume continues a --fine-tune run. Without --fine-tune there is nothing to resume: the "
                            "token weights and the linear map take minutes; run again to a new --output.")
    given = [("--no-" if value is False else "--") + name.replace("_", "-")
             for name, value in training_only.items() if value is not None]
    if given:
        flags = ", ".join(given)
        verb = "changes" if len(given) == 1 else "change"
        raise KosearchError(f"{flags} only {verb} the fine-tuning: add --fine-tune, or leave {flags} out.")


def _resumed_word_weights(config: TrainingConfig, word_weights: bool, base_weighted: bool):
    """The token weights the run being resumed added (so training goes on with the table it started with), or
    None when there is no checkpoint or the run added none. A resume whose model would not have the checkpoint's
    shape is refused (its weights could not be loaded): one that would add or drop the run's weights, or one from
    another base model.

    ``base_weighted``: the base model has token weights of its own (an adapted model fine-tuned with
    ``--no-word-weights``); its checkpoints then hold them too, and the base model, loaded as it is, has the shape."""
    checkpoint = last_checkpoint(config, PHASE)
    if checkpoint is None:
        return None
    weighted = has_saved_word_weights(checkpoint)
    if base_weighted and not word_weights:
        if not weighted:
            raise KosearchError(f"The run in {config.output} was started from a model without token weights, and "
                                "this --model has them: resume it with the --model it started from.")
        return None
    if weighted != word_weights:
        started = "with" if weighted else "without"
        flag = "--word-weights" if weighted else "--no-word-weights"
        raise KosearchError(f"The run in {config.output} was started {started} token weights: resume it with {flag}.")
    return saved_word_weights(checkpoint) if weighted else None


def _base_model(config: TrainingConfig) -> SentenceTransformer:
    model = resolve_base_model(dataclasses.replace(config, max_seq_length=None))
    if config.max_seq_length is not None:
        model.max_seq_length = config.max_seq_length
    return model


def _plan(
    config: TrainingConfig,
    model: SentenceTransformer,
    examples: list[TrainingExample],
    loss: Any,
    learning_rate: float,
    started: float,
    *,
    hard_negatives: bool = True,
) -> BudgetPlan | None:
    """The budget plan: the saved one when resuming (same schedule), a measured one with a budget, else None."""
    if config.max_minutes is None:
        return None
    checkpoint = last_checkpoint(config, PHASE)
    if checkpoint is not None:
        saved = BudgetPlan.load(Path(checkpoint))
        if saved is not None:
            left = config.max_minutes * 60 - (time.perf_counter() - started) - finish_seconds(saved.save_seconds)
            logger.info("Resuming the budget plan of %s (%d steps)", checkpoint, saved.steps)
            return dataclasses.replace(saved, train_seconds=max(left, 1.0))
    prompts = _prompts(model)
    batch_size = config.batch_size
    batches = [
        {
            "anchor": [example.query for example in examples[start : start + batch_size]],
            "positive": [example.positive for example in examples[start : start + batch_size]],
            **({"negative": [example.negative for example in examples[start : start + batch_size]]}
               if hard_negatives else {}),
        }
        for start in range(0, min(len(examples), batch_size * 2), batch_size)
    ]
    start_length = config.max_seq_length or auto_length(model, [example.positive for example in examples])
    precision, _ = training_precision(config.precision, cuda_available(config.device))

    def measure(length: int) -> float:
        return measure_step_seconds(
            model, loss, batches, max_seq_length=length, learning_rate=learning_rate, batch_size=batch_size,
            prompts=prompts, freeze_embeddings=config.freeze_embeddings, bf16=precision == "bf16",
        )

    budget = config.max_minutes * 60
    # Measure first, then plan with what is left: the measurement itself is part of the budget.
    save_seconds = measure_save_seconds(model)
    first = measure(start_length)
    reserve = finish_seconds(save_seconds)
    left = budget - (time.perf_counter() - started) - reserve
    if left <= first + CHECKPOINT_SAVE_FACTOR * save_seconds:
        raise KosearchError(
            f"--max-minutes {config.max_minutes:g} leaves no time to train: reading, mining and measuring took "
            f"{(time.perf_counter() - started) / 60:.1f} min, one step takes {first:.1f} s and saving the model "
            f"{save_seconds:.1f} s. Give a larger budget."
        )
    timings = {start_length: first}
    passes = epoch_steps(len(examples), batch_size, config.epochs)
    plan = plan_budget(
        lambda length: timings[length] if length in timings else measure(length),
        train_seconds=left,
        start_length=start_length,
        fixed_length=config.max_seq_length is not None,
        min_steps=min(MIN_STEPS, passes),
    )
    # Measuring shorter lengths took time too: plan the steps on what is left now.
    left = max(budget - (time.perf_counter() - started) - reserve, plan.seconds_per_step)
    fit = steps_that_fit(left, plan.seconds_per_step, save_seconds=save_seconds, save_every=config.eval_steps)
    steps = min(fit, passes)
    if steps < fit:
        logger.info("%d steps fit the budget; %g pass(es) over %d examples take %d", fit, config.epochs,
                    len(examples), passes)
    return dataclasses.replace(
        plan, steps=steps, train_seconds=left, save_seconds=save_seconds, precision=precision
    )


def epoch_steps(examples: int, batch_size: int, epochs: float) -> int:
    """Optimizer steps of ``epochs`` passes over ``examples`` (at least one).

    A budget is an upper bound, never a reason to repeat the mined examples. On the chatbot answers folder (2,579
    examples; question -> answer dense nDCG@10 of the bundled e5: 7.09, KorSTS 76.85) half a pass gave 8.38 and
    KorSTS -1.3, one pass 7.92 and KorSTS -0.7, three passes 5.43 and KorSTS -4.7, and the 22 passes a
    60-minute budget allowed 4.53 and KorSTS -10.0 (docs/training.md, "Passes over the mined examples")."""
    return max(1, math.ceil(examples * epochs / batch_size))


def time_limit(plan: BudgetPlan) -> float:
    """Seconds of training after which the trainer stops: the plan's time less the checkpoint written at the stop
    and one step (the limit is checked after a step ends), so a slower stretch cannot push the run past the budget."""
    return max(plan.train_seconds - CHECKPOINT_SAVE_FACTOR * plan.save_seconds - plan.seconds_per_step,
               plan.seconds_per_step)


def _prompts(model: SentenceTransformer) -> dict[str, str]:
    query = model.prompts.get("query") or ""
    document = next((model.prompts[name] for name in ("document", "passage", "corpus") if model.prompts.get(name)), "")
    return {"anchor": query, "positive": document, "negative": document}


def _examples_line(report: MiningReport, total: int) -> str:
    return f"{total:,} ({report.summary()})"


class PlanCheckpoint(TrainerCallback):
    """Saves the budget plan next to each trainer checkpoint, so ``--resume`` keeps the planned schedule."""

    def __init__(self, plan: BudgetPlan) -> None:
        self.plan = plan

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            self.plan.save(folder)
