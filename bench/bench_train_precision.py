"""Training step time and loss of ``train adapt`` in fp32 vs bf16 mixed precision on this CPU.

bf16 encoding is 2.8-5x faster than fp32 on CPUs with AMX (docs/benchmarks.md, "GPU encode path"). Training is
forward + backward + an fp32 AdamW update; does autocast to bf16 pay there too, and does the loss stay where
fp32's goes? This runs the recipe's real trainer path (``kosearch.train.trainer.training_arguments`` with
``bf16=True``, i.e. ``SentenceTransformerTrainer`` under accelerate's CPU autocast) on the same mined
examples, same batches, same seed, at equal batch size and sequence length, and times every optimizer step.

Runs alternate A B B A ... (fp32, bf16, bf16, fp32, ...) so both precisions see the same machine load. Each run
starts from the same base weights; its first ``--skip`` steps (allocation, warm caches) are not timed.
Printed: median step seconds per precision, bf16/fp32 speed-up, and the two loss curves side by side.

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_train_precision.py --steps 8 --repeats 2 \
        --batch-size 32 --max-seq-length 128 --json runs/precision.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from transformers import TrainerCallback  # noqa: E402


class StepTimes(TrainerCallback):
    """Wall time of each optimizer step and the logged losses."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.losses: list[float] = []
        self._started = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._started)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))


def one_run(model_name: str | None, dataset, precision: str, args: argparse.Namespace, workdir: Path) -> StepTimes:
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import set_seed

    from kosearch.train.adapt import DEFAULT_LEARNING_RATE, PHASE
    from kosearch.train.config import TrainingConfig
    from kosearch.train.models import resolve_base_model
    from kosearch.train.trainer import training_arguments
    from kosearch.train.types import TrainingPhase

    config = TrainingConfig(
        output=workdir / precision, model=model_name, batch_size=args.batch_size, max_seq_length=args.max_seq_length,
        max_steps=args.steps, logging_steps=1, device="cpu", freeze_embeddings=True, seed=42,
    )
    set_seed(42)
    model = resolve_base_model(config)
    phase = TrainingPhase(
        name=PHASE, train_dataset=dataset, loss=lambda m: MultipleNegativesRankingLoss(m, scale=20.0),
        learning_rate=DEFAULT_LEARNING_RATE, no_duplicates=True,
        column_prompts={"anchor": "query", "positive": "document", "negative": "document"},
    )
    hf_args = training_arguments(
        config, phase, workdir / f"{precision}-ckpt", None, False, precision == "bf16", with_dev=False,
        model_prompts=model.prompts,
    )
    hf_args.save_strategy = "no"
    hf_args.disable_tqdm = True
    model.transformers_model.get_input_embeddings().weight.requires_grad_(False)
    timer = StepTimes()
    trainer = SentenceTransformerTrainer(
        model=model, args=hf_args, train_dataset=dataset, loss=phase.loss(model), callbacks=[timer]
    )
    trainer.train()
    return timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=Path, default=ROOT / "corpora" / "sample")
    parser.add_argument("--model", default=None, help="base model (default: the bundled e5)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--skip", type=int, default=2, help="first steps of each run not timed")
    parser.add_argument("--repeats", type=int, default=2, help="ABBA pairs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from kosearch.train.adapt import examples_dataset, read_passages
    from kosearch.train.mining import mine_examples

    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()
    passages, _ = read_passages(args.documents)
    examples, report = mine_examples(passages, seed=42)
    dataset = examples_dataset(examples)
    print(f"{len(examples)} examples from {len(passages)} passages ({report.summary()})", flush=True)
    order: list[str] = []
    for pair in range(args.repeats):
        order += ["fp32", "bf16"] if pair % 2 == 0 else ["bf16", "fp32"]
    runs: dict[str, list[StepTimes]] = {"fp32": [], "bf16": []}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in order:
            timer = one_run(args.model, dataset, precision, args, Path(tmp))
            runs[precision].append(timer)
            timed = timer.seconds[args.skip :]
            print(f"{precision}: steps {', '.join(f'{s:.2f}' for s in timer.seconds)} s; "
                  f"loss {', '.join(f'{x:.3f}' for x in timer.losses)}  (load {os.getloadavg()[0]:.2f})", flush=True)
            del timed
    median = {p: statistics.median(s for t in runs[p] for s in t.seconds[args.skip :]) for p in runs}
    speedup = median["fp32"] / median["bf16"]
    loss_gap = [
        abs(a - b) for ta, tb in zip(runs["fp32"], runs["bf16"]) for a, b in zip(ta.losses, tb.losses)
    ]
    result = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "batch_size": args.batch_size,
        "max_seq_length": args.max_seq_length,
        "steps": args.steps,
        "skip": args.skip,
        "order": order,
        "median_step_seconds": median,
        "bf16_speedup": speedup,
        "max_abs_loss_gap": max(loss_gap) if loss_gap else None,
        "runs": {p: [{"seconds": t.seconds, "losses": t.losses} for t in runs[p]] for p in runs},
    }
    print(f"median step: fp32 {median['fp32']:.2f} s, bf16 {median['bf16']:.2f} s -> bf16 {speedup:.2f}x; "
          f"largest |loss fp32 - loss bf16| at the same step {result['max_abs_loss_gap']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
