"""``kosearch train adapt``: mined retrieval examples, the budget planner, resuming, on a tiny model and the real one.

The tiny model (tests/fixtures/train/tiny_model.py) makes a step take milliseconds, so the recipe's real reader,
miner, planner, trainer, checkpoints and card all run here; one slow test takes a real step of the bundled e5.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kosearch.errors import KosearchError
from kosearch.train import TrainingConfig, train_adapt
from kosearch.train.adapt import read_passages
from kosearch.train.budget import PLAN_FILE, BudgetPlan, plan_budget
from kosearch.train.mining import mine_examples

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpora" / "sample"
FIXTURES = Path(__file__).parent / "fixtures" / "train"
sys.path.insert(0, str(FIXTURES))
from tiny_model import TINY_PROMPTS, build_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-adapt") / "model")


@pytest.fixture(scope="module")
def sample_passages():
    passages, skipped = read_passages(SAMPLE)
    assert not skipped
    return passages


def _config(tiny_model: Path, output: Path, **overrides) -> TrainingConfig:
    settings = dict(
        output=output, model=str(tiny_model), batch_size=8, learning_rate=1e-3, device="cpu", logging_steps=1,
        max_seq_length=64,
    )
    settings.update(overrides)
    return TrainingConfig(**settings)


def _load(folder: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


def test_passages_come_from_the_documents_stage(sample_passages) -> None:
    from kosearch.documents import Document, iter_documents

    expected = {s.text.strip() for d in iter_documents(SAMPLE, mode="passage") if isinstance(d, Document)
                for s in d.sentences}
    assert {p.text for p in sample_passages} == expected
    assert {p.source.split("/")[0] for p in sample_passages} >= {"뉴스", "리뷰"}


def test_mined_examples_are_retrieval_shaped(sample_passages) -> None:
    examples, report = mine_examples(sample_passages, seed=1)
    texts = {p.text for p in sample_passages}
    by_kind = {kind: [e for e in examples if e.kind == kind] for kind in ("ict", "keywords")}
    assert by_kind["ict"] and by_kind["keywords"]
    assert report.kept["ict"] == len(by_kind["ict"]) and report.kept["keywords"] == len(by_kind["keywords"])
    for example in examples:
        assert example.negative in texts
        assert example.query not in example.negative, "a negative containing the query is a false negative"
        assert example.negative != example.positive
    for example in by_kind["ict"]:
        # The query is a sentence of a passage; mostly taken out of its positive (inverse cloze).
        assert any(example.query in p.text and example.positive != p.text for p in sample_passages) or any(
            example.positive == p.text and example.query in p.text for p in sample_passages
        )
    removed = sum(example.query not in example.positive for example in by_kind["ict"])
    assert removed >= 0.75 * len(by_kind["ict"])
    for example in by_kind["keywords"]:
        assert example.positive in texts and 2 <= len(example.query.split()) <= 4
        assert all(word in example.positive.lower() for word in example.query.split())
    again, _ = mine_examples(sample_passages, seed=1)
    assert again == examples, "the same seed must give the same examples (a resumed run trains on them)"


def test_round_trip_filter_drops_queries_bm25_cannot_place() -> None:
    from kosearch.train.mining import Passage

    generic = "감사합니다 정말 좋습니다."
    passages = [Passage(f"{generic} {topic}에 대한 안내문입니다. {topic} 신청은 온라인으로 받습니다.", f"{i}.txt")
                for i, topic in enumerate(["도서관", "주차장", "수영장", "체육관", "미술관", "박물관"])]
    examples, report = mine_examples(passages, seed=0, top_k=1)
    assert report.made["ict"] == 6
    assert all(generic not in example.query for example in examples if example.kind == "ict")


def test_plan_halves_the_length_when_few_steps_fit() -> None:
    measured = []

    def measure(length: int) -> float:
        measured.append(length)
        return length / 100  # 2.56 s at 256 tokens, 0.64 s at 64

    plan = plan_budget(measure, train_seconds=100, start_length=256, min_steps=100)
    assert measured == [256, 128, 64]
    assert plan.max_seq_length == 64 and plan.steps == int(100 * 0.85 / 0.64)
    fixed = plan_budget(measure, train_seconds=100, start_length=256, fixed_length=True)
    assert fixed.max_seq_length == 256


def test_steps_that_fit_reserve_the_checkpoints() -> None:
    """The arithmetic of the plan: steps x step time + periodic and final checkpoints <= SAFETY x time left."""
    from kosearch.train.budget import CHECKPOINT_SAVE_FACTOR, SAFETY, steps_that_fit

    assert steps_that_fit(100, 1.0) == int(100 * SAFETY)
    # A 3-minute budget with a 10 s model save: the final checkpoint (20 s) alone is an eighth of it.
    steps = steps_that_fit(180, 2.0, save_seconds=10.0, save_every=100)
    checkpoint = CHECKPOINT_SAVE_FACTOR * 10.0
    assert steps == int((180 * SAFETY - checkpoint) / 2.0)  # fewer than 100 steps: no periodic checkpoint
    for total in (60.0, 600.0, 3600.0):
        for step in (0.5, 3.0, 20.0):
            n = steps_that_fit(total, step, save_seconds=8.0, save_every=50)
            cost = n * step + (n // 50 + 1) * CHECKPOINT_SAVE_FACTOR * 8.0
            assert n == 1 or cost <= total * SAFETY
            assert (n + 1) * step + ((n + 1) // 50 + 1) * CHECKPOINT_SAVE_FACTOR * 8.0 > total * SAFETY
    assert steps_that_fit(10, 30.0) == 1


def test_time_limit_leaves_room_for_the_stop_checkpoint() -> None:
    from kosearch.train.adapt import time_limit
    from kosearch.train.budget import CHECKPOINT_SAVE_FACTOR

    plan = BudgetPlan(max_seq_length=64, steps=50, seconds_per_step=2.0, train_seconds=170.0, save_seconds=5.0)
    assert time_limit(plan) == 170.0 - CHECKPOINT_SAVE_FACTOR * 5.0 - 2.0
    assert time_limit(BudgetPlan(64, 1, 2.0, 3.0, save_seconds=5.0)) == 2.0


def test_step_clock_times_steps_and_saves_with_a_fake_clock() -> None:
    from kosearch.train.callbacks import StepClock

    now = [0.0]
    clock = StepClock(clock=lambda: now[0])
    for duration, save in ((9.0, None), (2.0, None), (3.0, 7.0), (2.5, None)):
        clock.on_step_begin(None, None, None)
        now[0] += duration
        clock.on_step_end(None, None, None)
        if save is not None:
            now[0] += save
            clock.on_save(None, None, None)
        now[0] += 0.1
    assert clock.step_seconds == [9.0, 2.0, 3.0, 2.5]
    assert clock.first_step == 9.0 and clock.median_step == 2.5
    assert clock.save_seconds == [7.0]


def test_old_plan_files_still_load(tmp_path: Path) -> None:
    (tmp_path / PLAN_FILE).write_text(
        json.dumps({"max_seq_length": 64, "steps": 10, "seconds_per_step": 1.0, "train_seconds": 60.0}),
        encoding="utf-8",
    )
    plan = BudgetPlan.load(tmp_path)
    assert plan is not None and plan.save_seconds == 0.0 and plan.precision == "fp32"


def test_adapt_trains_a_few_steps_and_writes_a_model_folder(tiny_model: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    result = train_adapt(_config(tiny_model, tmp_path / "adapt", max_steps=3), SAMPLE, fine_tune=True)
    assert result.steps == 3 and result.recipe == "adapt"
    model = SentenceTransformer(str(result.output), device="cpu")
    assert model.prompts == TINY_PROMPTS
    probe = ["치타가 먹이를 쫓는다", "도서관 휴관일"]
    base = SentenceTransformer(str(tiny_model), device="cpu")
    assert not np.allclose(model.encode_document(probe), base.encode_document(probe))
    card = (result.output / "README.md").read_text(encoding="utf-8")
    assert "kosearch `adapt` encoder" in card and "MultipleNegativesRankingLoss" in card
    assert f"| `{SAMPLE}` | passages (unlabelled)" in card
    assert "anchor: 'query: '" in card and "positive: 'passage: '" in card
    assert "Mined examples: ict:" in card


def test_budget_is_honoured_and_a_stopped_run_resumes(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan that overshoots (as on a machine that slows down) is stopped by the time limit with a checkpoint;
    --resume continues the same plan, so the learning-rate schedule is the one planned."""
    import kosearch.train.budget as budget

    output = tmp_path / "budget"
    monkeypatch.setattr(budget, "SAFETY", 4.0)
    minutes = 0.25
    started = time.perf_counter()
    # Many passes allowed, so the budget (not the passes over the examples) bounds the plan.
    first = train_adapt(
        _config(tiny_model, output, max_minutes=minutes, keep_checkpoints=True, eval_steps=10_000, epochs=1000),
        SAMPLE, fine_tune=True,
    )
    elapsed = time.perf_counter() - started
    assert elapsed <= minutes * 60 + 5, f"a {minutes * 60:.0f} s budget took {elapsed:.1f} s"
    (phase,) = first.phases
    assert 0 < phase.steps < phase.planned_steps, "the time limit, not the plan, ended this run"
    checkpoint = output / "checkpoints" / "adapt" / f"checkpoint-{phase.steps}"
    plan = BudgetPlan.load(checkpoint)
    assert plan is not None and plan.steps == phase.planned_steps
    assert (checkpoint / PLAN_FILE).is_file()
    assert any("stopped by the time limit" in note for note in first.notes)
    assert any(note.startswith("Budget plan:") and "per model save" in note for note in first.notes)
    assert phase.median_step_seconds is not None and phase.save_seconds, "the step clock saw steps and a checkpoint"

    with pytest.raises(KosearchError, match="--resume"):
        train_adapt(_config(tiny_model, output, max_minutes=minutes), SAMPLE, fine_tune=True)
    second = train_adapt(
        _config(tiny_model, output, max_minutes=minutes, resume=True, eval_steps=10_000, epochs=1000), SAMPLE,
        fine_tune=True,
    )
    (resumed,) = second.phases
    assert resumed.planned_steps == phase.planned_steps
    assert resumed.steps > phase.steps
    assert not (output / "checkpoints").exists()


def test_a_fine_tuning_of_an_adapted_model_resumes(tiny_model: Path, tmp_path: Path, monkeypatch) -> None:
    """An adapted model (token weights of its own) fine-tuned with --no-word-weights: its checkpoints hold the base's
    weights, and --resume continues them (it was refused, asking for --word-weights, which is refused in turn)."""
    import kosearch.train.budget as budget
    from sentence_transformers.sentence_transformer.modules import WordWeights

    weighted = train_adapt(_config(tiny_model, tmp_path / "weighted", learning_rate=None), SAMPLE, linear_map=False)
    monkeypatch.setattr(budget, "SAFETY", 4.0)
    output = tmp_path / "tuned"
    settings = dict(max_minutes=0.25, eval_steps=10_000, epochs=1000)
    first = train_adapt(_config(weighted.output, output, keep_checkpoints=True, **settings), SAMPLE, fine_tune=True,
                        word_weights=False)
    (phase,) = first.phases
    assert 0 < phase.steps < phase.planned_steps, "the time limit ended the first run, so there is something to resume"
    second = train_adapt(_config(weighted.output, output, resume=True, **settings), SAMPLE, fine_tune=True,
                         word_weights=False)
    assert second.phases[0].steps > phase.steps
    tables = [module for module in _load(second.output) if isinstance(module, WordWeights)]
    base_table = [module for module in _load(weighted.output) if isinstance(module, WordWeights)]
    assert len(tables) == 1 == len(base_table), "the base's weights, once"
    assert np.array_equal(tables[0].emb_layer.weight.detach().numpy(), base_table[0].emb_layer.weight.detach().numpy())
    # A run started from another base model (without weights) is refused, not failed on the checkpoint's shape.
    other = tmp_path / "from-plain"
    train_adapt(_config(tiny_model, other, keep_checkpoints=True, **settings), SAMPLE, fine_tune=True,
                word_weights=False)
    with pytest.raises(KosearchError, match="started from a model without token weights, and this --model has them"):
        train_adapt(_config(weighted.output, other, resume=True, **settings), SAMPLE, fine_tune=True,
                    word_weights=False)
    # The model's refusal comes before the folder is read: a folder of nothing readable gets this, not "0 passages".
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "x.pdf").write_bytes(b"%PDF-1.7 not really")
    with pytest.raises(KosearchError, match="already has token weights"):
        train_adapt(_config(weighted.output, tmp_path / "twice", **settings), garbage, fine_tune=True)


def test_a_missing_folder_is_refused_before_the_model_loads(tiny_model: Path, tmp_path: Path, monkeypatch) -> None:
    import kosearch.train.adapt as adapt

    def never(config):
        raise AssertionError("the base model was loaded (a download, for a hub id) before the folder was checked")

    monkeypatch.setattr(adapt, "_base_model", never)
    for options in ({"fine_tune": True}, {}):
        with pytest.raises(KosearchError, match="does not exist: pass the folder"):
            train_adapt(_config(tiny_model, tmp_path / "never", learning_rate=None), tmp_path / "missing", **options)


def test_a_large_budget_trains_one_pass_over_the_examples_not_the_whole_budget(
    tiny_model: Path, tmp_path: Path
) -> None:
    """The budget is an upper bound: repeating the mined examples to fill it made the encoder worse (22 passes on
    the chatbot answers: nDCG@10 7.09 -> 4.53, KorSTS -10), so a 30-minute budget on a small folder trains
    ``--epochs`` passes and stops."""
    from kosearch.train.adapt import epoch_steps

    passages, _ = read_passages(SAMPLE)
    examples, _ = mine_examples(passages, seed=42)
    started = time.perf_counter()
    result = train_adapt(_config(tiny_model, tmp_path / "pass", max_minutes=30, seed=42), SAMPLE, fine_tune=True)
    (phase,) = result.phases
    expected = -(-len(examples) // 8)  # one pass in batches of 8, computed apart from the code under test
    assert epoch_steps(len(examples), 8, 1.0) == expected
    assert phase.planned_steps == phase.steps == expected
    assert time.perf_counter() - started < 30 * 60 / 4, "it stopped after the pass, long before the budget"
    assert any(f"{len(examples):,} examples (--epochs)" in note for note in result.notes)
    twice = epoch_steps(len(examples), 8, 2.0)
    assert twice in (2 * expected, 2 * expected - 1)


def test_cli_adapt_prints_json(tiny_model: Path, tmp_path: Path) -> None:
    from kosearch.cli.train import app

    output = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        ["adapt", "--documents", str(SAMPLE), "--model", str(tiny_model), "--output", str(output),
         "--max-steps", "2", "--batch-size", "4", "--max-seq-length", "32", "--device", "cpu", "--fine-tune", "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout holds the JSON alone: the trainer's log lines go to stderr
    assert (summary["recipe"], summary["steps"]) == ("adapt", 2)
    assert (output / "modules.json").is_file()


def test_too_small_a_folder_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "one.txt").write_text("한 문장뿐인 문서입니다.", encoding="utf-8")
    with pytest.raises(KosearchError, match="larger folder"):
        train_adapt(_config(tiny_model, tmp_path / "never", max_steps=1), folder, fine_tune=True)
    with pytest.raises(KosearchError, match="does not exist"):
        train_adapt(_config(tiny_model, tmp_path / "never", max_steps=1), tmp_path / "missing", fine_tune=True)
    # A folder whose files cannot be read: the refusal says why, not only that nothing came of them.
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "x.pdf").write_bytes(bytes(range(256)) * 4)
    for options in ({"fine_tune": True}, {}):
        with pytest.raises(KosearchError, match=r"gave 0 passages \(1 file\(s\) could not be read, e.g. .*x\.pdf: "):
            train_adapt(_config(tiny_model, tmp_path / "never", max_steps=1 if options else None,
                                learning_rate=1e-3 if options else None), garbage, **options)
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_bundled_encoder_takes_an_adapt_step(tmp_path: Path) -> None:
    """The real path: the bundled e5 with its query/passage prompts, frozen embeddings, one optimizer step."""
    from sentence_transformers import SentenceTransformer

    result = train_adapt(
        TrainingConfig(output=tmp_path / "bundled", max_steps=1, batch_size=4, max_seq_length=32, device="cpu",
                       freeze_embeddings=True, evaluate_base=False),
        SAMPLE, fine_tune=True,
    )
    assert result.steps == 1
    model = SentenceTransformer(str(result.output), device="cpu")
    assert model.prompts.get("query") == "query: " and model.prompts.get("document") == "passage: "
    assert model.encode_query(["도서관 휴관일"]).shape == (1, 384)
    assert [type(module).__name__ for module in model] == ["Transformer", "WordWeights", "Pooling", "Normalize"]
    assert "anchor: 'query: '" in (result.output / "README.md").read_text(encoding="utf-8")


def test_process_seconds_counts_from_the_process_start() -> None:
    """The CLI's budget includes Python's start-up: a process that slept 1 s before asking has spent at least 1 s."""
    import subprocess

    code = "import time; time.sleep(1.0); from kosearch.train.budget import process_seconds; print(process_seconds())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert 1.0 <= float(out.stdout) < 60.0


def test_anchor_term_is_zero_at_the_base_and_grows_as_the_student_moves(tiny_model: Path) -> None:
    """AnchoredRankingLoss = MultipleNegativesRankingLoss + weight x (1 - cos) to a frozen copy of the base: equal to
    the plain loss while the student is the base, larger once its weights move, and the copy never trains."""
    import copy

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from kosearch.train.anchored_loss import AnchoredRankingLoss

    model = SentenceTransformer(str(tiny_model), device="cpu")
    base = copy.deepcopy(model)
    anchored = AnchoredRankingLoss(model, base, scale=20.0, weight=5.0)
    plain = MultipleNegativesRankingLoss(model, scale=20.0)
    texts = {"anchor": ["도서관 휴관일", "치타 먹이"], "positive": ["도서관은 월요일에 쉽니다.", "치타가 먹이를 쫓는다."]}

    def features():
        return [model.tokenize(column) for column in texts.values()]

    model.eval()  # no dropout, so the two losses see the same embeddings
    with torch.no_grad():
        assert float(anchored(features(), None)) == pytest.approx(float(plain(features(), None)), abs=1e-5)
        assert anchored.last_anchor == pytest.approx(0.0, abs=1e-6)
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        moved = float(anchored(features(), None))
        assert anchored.last_anchor > 1e-4
        assert moved == pytest.approx(float(plain(features(), None)) + 5.0 * anchored.last_anchor, abs=1e-5)
    anchored.train()
    assert not base.training and not any(parameter.requires_grad for parameter in base.parameters())
    assert all(parameter is not base_parameter for parameter in anchored.parameters() for base_parameter in base.parameters())


def test_anchor_keeps_the_adapted_model_nearer_the_base(tiny_model: Path, tmp_path: Path) -> None:
    """The same run with and without the anchor (a large weight): the anchored model's document embeddings stay
    closer to the base model's, which is what the anchor is for. Without token weights, which move the embeddings
    before any step (the anchor holds the model near its weighted start, not the unweighted base)."""
    from sentence_transformers import SentenceTransformer

    probe = [p.text for p in read_passages(SAMPLE)[0][:40]]
    base = SentenceTransformer(str(tiny_model), device="cpu").encode_document(probe, normalize_embeddings=True)

    def drift(weight: float) -> float:
        output = tmp_path / f"anchor-{weight:g}"
        result = train_adapt(
            _config(tiny_model, output, max_steps=6, seed=3), SAMPLE, anchor_weight=weight, word_weights=False, fine_tune=True
        )
        trained = SentenceTransformer(str(result.output), device="cpu").encode_document(probe, normalize_embeddings=True)
        return float(np.mean(1 - np.sum(trained * base, axis=1)))

    free, anchored = drift(0.0), drift(100.0)
    assert free > 0 and anchored < 0.5 * free, (free, anchored)


def test_adapt_without_hard_negatives_trains_on_pairs(tiny_model: Path, tmp_path: Path) -> None:
    from kosearch.train.adapt import examples_dataset
    from kosearch.train.mining import TrainingExample

    examples = [TrainingExample("q", "p", "n", "keywords")]
    assert examples_dataset(examples).column_names == ["anchor", "positive", "negative"]
    assert examples_dataset(examples, hard_negatives=False).column_names == ["anchor", "positive"]
    result = train_adapt(
        _config(tiny_model, tmp_path / "pairs", max_steps=2), SAMPLE, hard_negatives=False, fine_tune=True
    )
    assert result.steps == 2
    assert "none (in-batch only)" in (result.output / "README.md").read_text(encoding="utf-8")


def test_cli_adapt_passes_the_anchor_and_negatives_options(tiny_model: Path, tmp_path: Path) -> None:
    from kosearch.cli.train import app

    output = tmp_path / "cli-anchor"
    result = CliRunner().invoke(
        app,
        ["adapt", "--documents", str(SAMPLE), "--model", str(tiny_model), "--output", str(output), "--max-steps", "2",
         "--batch-size", "4", "--max-seq-length", "32", "--device", "cpu", "--anchor-weight", "3",
         "--no-hard-negatives", "--fine-tune", "--json"],
    )
    assert result.exit_code == 0, result.output
    card = (output / "README.md").read_text(encoding="utf-8")
    assert "+ 3 x (1 - cos) to the base model's embeddings" in card and "none (in-batch only)" in card


def test_question_queries_take_the_particle_of_the_last_syllable() -> None:
    from kosearch.train.mining import QUESTION_TEMPLATES, final_consonant, question_about

    assert (final_consonant("연말정산"), final_consonant("학교"), final_consonant("API")) == (True, False, None)
    assert question_about("연말정산", "{x}{eun} 무엇인가요?") == "연말정산은 무엇인가요?"
    assert question_about("학교", "{x}{eun} 무엇인가요?") == "학교는 무엇인가요?"
    assert question_about("주차 요금", "{x}{i} 뭐야?") == "주차 요금이 뭐야?"
    assert question_about("비자", "{x}{eul} 어떻게 하면 좋을까?") == "비자를 어떻게 하면 좋을까?"
    # No Hangul last syllable, no reliable particle: a form without one.
    assert question_about("API", "{x}{eun} 무엇인가요?") == "API에 대해 알려줘"
    for template in QUESTION_TEMPLATES:
        assert "{" not in question_about("도서관", template)


def test_question_share_rewrites_keyword_queries_as_questions(sample_passages) -> None:
    plain, plain_report = mine_examples(sample_passages, seed=1)
    assert "question" not in plain_report.made, "off by default: the recipe's examples are unchanged"
    examples, report = mine_examples(sample_passages, seed=1, question_share=1.0)
    questions = [example for example in examples if example.kind == "question"]
    assert not [example for example in examples if example.kind == "keywords"]
    assert report.made["question"] == plain_report.made["keywords"], "every keyword query became a question"
    assert len(questions) == report.kept["question"] > 0
    from itertools import combinations

    from kosearch.train.mining import QUESTION_TEMPLATES, question_about

    # Each question is a template about one or two of the salient nouns the passage's keyword query held.
    keywords_of = {example.positive: example.query.split() for example in plain if example.kind == "keywords"}
    checked = 0
    for example in questions:
        if example.positive not in keywords_of:
            continue  # its keyword query was not kept by the round-trip filter
        words = keywords_of[example.positive]
        subjects = [" ".join(pick) for size in (1, 2) for pick in combinations(words, size)]
        assert any(question_about(subject, template) == example.query
                   for subject in subjects for template in QUESTION_TEMPLATES), example.query
        checked += 1
    assert checked >= 0.8 * len(questions)
    mixed, mixed_report = mine_examples(sample_passages, seed=1, question_share=0.5)
    assert 0 < mixed_report.made["question"] < plain_report.made["keywords"]
    assert mixed_report.made["ict"] == plain_report.made["ict"]
    assert mine_examples(sample_passages, seed=1, question_share=0.5)[0] == mixed, "deterministic for a seed"


def test_cli_adapt_passes_the_question_share(tiny_model: Path, tmp_path: Path) -> None:
    from kosearch.cli.train import app

    output = tmp_path / "cli-question"
    result = CliRunner().invoke(
        app,
        ["adapt", "--documents", str(SAMPLE), "--model", str(tiny_model), "--output", str(output), "--max-steps", "2",
         "--batch-size", "4", "--max-seq-length", "32", "--device", "cpu", "--question-share", "1", "--fine-tune", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert "question: " in (output / "README.md").read_text(encoding="utf-8")
