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


def test_adapt_trains_a_few_steps_and_writes_a_model_folder(tiny_model: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    result = train_adapt(_config(tiny_model, tmp_path / "adapt", max_steps=3), SAMPLE)
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
    first = train_adapt(
        _config(tiny_model, output, max_minutes=minutes, keep_checkpoints=True, eval_steps=10_000), SAMPLE
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

    with pytest.raises(KosearchError, match="--resume"):
        train_adapt(_config(tiny_model, output, max_minutes=minutes), SAMPLE)
    second = train_adapt(_config(tiny_model, output, max_minutes=minutes, resume=True, eval_steps=10_000), SAMPLE)
    (resumed,) = second.phases
    assert resumed.planned_steps == phase.planned_steps
    assert resumed.steps > phase.steps
    assert not (output / "checkpoints").exists()


def test_cli_adapt_prints_json(tiny_model: Path, tmp_path: Path) -> None:
    from kosearch.cli.train import app

    output = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        ["adapt", "--documents", str(SAMPLE), "--model", str(tiny_model), "--output", str(output),
         "--max-steps", "2", "--batch-size", "4", "--max-seq-length", "32", "--device", "cpu", "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["recipe"], summary["steps"]) == ("adapt", 2)
    assert (output / "modules.json").is_file()


def test_too_small_a_folder_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "one.txt").write_text("한 문장뿐인 문서입니다.", encoding="utf-8")
    with pytest.raises(KosearchError, match="larger folder"):
        train_adapt(_config(tiny_model, tmp_path / "never", max_steps=1), folder)
    with pytest.raises(KosearchError, match="does not exist"):
        train_adapt(_config(tiny_model, tmp_path / "never", max_steps=1), tmp_path / "missing")


@pytest.mark.slow
def test_bundled_encoder_takes_an_adapt_step(tmp_path: Path) -> None:
    """The real path: the bundled e5 with its query/passage prompts, frozen embeddings, one optimizer step."""
    from sentence_transformers import SentenceTransformer

    result = train_adapt(
        TrainingConfig(output=tmp_path / "bundled", max_steps=1, batch_size=4, max_seq_length=32, device="cpu",
                       freeze_embeddings=True, evaluate_base=False),
        SAMPLE,
    )
    assert result.steps == 1
    model = SentenceTransformer(str(result.output), device="cpu")
    assert model.prompts.get("query") == "query: " and model.prompts.get("document") == "passage: "
    assert model.encode_query(["도서관 휴관일"]).shape == (1, 384)
    assert "anchor: 'query: '" in (result.output / "README.md").read_text(encoding="utf-8")
