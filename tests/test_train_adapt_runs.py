"""bench/adapt_runs.py: its development sets keep labels out of the adaptation folder, its steps resume, its table.

The sets are built from small in-memory rows here; the real data is read only by the bench itself.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import adapt_runs  # noqa: E402


def test_chatbot_folder_holds_answers_only_and_every_question_finds_its_answers() -> None:
    rows = [("배고파", "밥 드세요."), ("배고프다", "밥 드세요."), ("졸려", "일찍 주무세요."), ("졸려", "커피 한 잔?"),
            ("심심해", "산책 어때요?"), ("  ", "빈 질문은 버려요.")]
    dataset, texts = adapt_runs.chatbot_set(rows, queries_wanted=10, seed=1)
    assert texts == ["밥 드세요.", "일찍 주무세요.", "커피 한 잔?", "산책 어때요?"]
    assert not set(dataset.queries.values()) & set(texts)
    assert {doc.text for doc in dataset.corpus.values()} == set(texts)
    by_text = {doc.text: doc.id for doc in dataset.corpus.values()}
    asked = {text: dataset.qrels[qid] for qid, text in dataset.queries.items()}
    assert asked["졸려"] == {by_text["일찍 주무세요."]: 1, by_text["커피 한 잔?"]: 1}
    assert asked["배고파"] == asked["배고프다"] == {by_text["밥 드세요."]: 1}
    small, _ = adapt_runs.chatbot_set(rows, queries_wanted=2, seed=1)
    assert len(small.queries) == 2


def test_chatbot_question_that_is_also_an_answer_is_left_out_of_the_evaluation() -> None:
    rows = [("안녕", "안녕"), ("안녕", "반가워요."), ("배고파", "밥 드세요."), ("졸려", "일찍 주무세요.")]
    dataset, texts = adapt_runs.chatbot_set(rows, queries_wanted=10, seed=1)
    assert "안녕" in texts  # the answer stays in the corpus and the folder
    assert sorted(dataset.queries.values()) == ["배고파", "졸려"]
    assert set(dataset.qrels) == set(dataset.queries)
    assert any("left out" in note for note in dataset.notes)


def test_nsmc_held_out_movies_never_reach_the_adaptation_folder() -> None:
    rows = []
    for movie in range(30):
        rows += [(str(movie), f"영화 {movie}번에 대한 충분히 긴 리뷰 문장 번호 {n}입니다") for n in range(14)]
    rows.append(("3", "영화 3번에 대한 충분히 긴 리뷰 문장 번호 0입니다"))  # a repeated text counts once
    dataset, texts = adapt_runs.nsmc_set(rows, movies=5, adapt_reviews=10_000, seed=3)
    assert len(dataset.corpus) == len(dataset.queries) == 5
    held = {doc_id[1:] for doc_id in dataset.corpus}
    for query_id, text in dataset.queries.items():
        (doc_id,) = dataset.qrels[query_id]
        page = dataset.corpus[doc_id].text.split("\n")
        assert text not in page and len(page) == adapt_runs.NSMC_DOC_REVIEWS
        assert all(review.startswith(f"영화 {doc_id[1:]}번") for review in page)
    assert not any(text.split("번")[0].removeprefix("영화 ") in held for text in texts)
    assert len(texts) == 25 * 14
    _, fewer = adapt_runs.nsmc_set(rows, movies=5, adapt_reviews=7, seed=3)
    assert len(fewer) == 7


def test_adaptation_folder_keeps_each_text_its_own_passage(tmp_path: Path) -> None:
    from kosearch.train.adapt import read_passages

    texts = [f"{n}번째 답변입니다. 두 번째 문장도 있어요." for n in range(7)]
    assert adapt_runs.write_adaptation_folder(texts, tmp_path / "docs", per_file=3) == 3
    passages, skipped = read_passages(tmp_path / "docs")
    assert not skipped
    assert sorted(p.text for p in passages) == sorted(texts)


def test_steps_run_once_and_resume(tmp_path: Path) -> None:
    calls = []
    steps = adapt_runs.Steps(tmp_path, clock=lambda: datetime(2026, 12, 6, 19, 0, tzinfo=timezone.utc))
    first = steps.run("chatbot/train/15", lambda: calls.append(1) or {"value": 1})
    assert first["value"] == 1 and first["started"] == "2026-12-06T19:00:00+00:00" and len(first["load_before"]) == 3
    again = adapt_runs.Steps(tmp_path).run("chatbot/train/15", lambda: calls.append(2) or {"value": 2})
    assert again == first and calls == [1]
    with pytest.raises(RuntimeError):
        steps.run("chatbot/eval/15", lambda: (_ for _ in ()).throw(RuntimeError("killed")))
    assert not steps.path("chatbot/eval/15").exists(), "a failed step leaves nothing that a rerun would skip"


def _eval(ndcg: float, mrr: float) -> dict:
    return {"started": "2026-12-06T19:00:00+00:00", "load_before": [1.0, 1.0, 1.0],
            "retrieval": {mode: {"ndcg_at_10": ndcg, "mrr_at_10": mrr} for mode in adapt_runs.MODES}}


def _sts(query: float, document: float) -> dict:
    return {"korsts": {"query": {"cosine_spearman": query}, "document": {"cosine_spearman": document}}}


def test_markdown_table_shows_differences_from_the_base() -> None:
    records = {"sets": {"chatbot": {
        "base": {"eval": _eval(50.0, 45.0), "sts": _sts(76.85, 71.68)},
        "adapt 3 min": {
            "eval": _eval(53.5, 44.0), "sts": _sts(76.0, 72.0),
            "train": {"started": "2026-12-06T19:01:00+00:00", "load_before": [2.0, 2, 2], "load_after": [3.0, 3, 3],
                      "wall_seconds": 180.0,
                      "train": {"steps": 40, "train_seconds": 120.0, "phases": [{"planned_steps": 42}]}},
        },
    }}}
    table = adapt_runs.markdown(records)
    row = table.splitlines()[-1]
    assert "| chatbot | adapt 3 min | 53.50 (+3.50) | 44.00 (-1.00) |" in row
    assert "76.00 (-0.85) / 72.00 (+0.32)" in row and "| 40 / 42 | 2.0 | 3.0 |" in row
    json.dumps(records)  # the JSON written next to the table holds the same records


def test_the_map_on_top_adapts_the_adapted_model_without_the_fine_tuning_arguments(tmp_path: Path, monkeypatch) -> None:
    """``--map-on-top`` runs ``train adapt`` on each adapted model with ``--no-word-weights`` (it has them already)
    and ``--map-arg``, not ``--train-arg`` (``--fine-tune`` there would train the encoder again instead of fitting
    the map), and evaluates both models; without a model that lacks a map it is refused before any work."""
    import subprocess

    commands, evaluated = [], []

    def fake_run(command, **kwargs):
        commands.append(command)
        output = Path(command[command.index("--output") + 1])
        output.mkdir(parents=True)
        (output / "modules.json").write_text("[]", encoding="utf-8")
        return subprocess.CompletedProcess(command, 0, stdout=json.dumps({"steps": 3, "train_seconds": 60.0,
                                                                          "phases": []}))

    def fake_eval(model, set_name, folder, args):
        evaluated.append(model)
        return {"model": model, "retrieval": {mode: {"ndcg_at_10": 1.0, "mrr_at_10": 1.0}
                                              for mode in adapt_runs.MODES}}

    monkeypatch.setattr(adapt_runs.subprocess, "run", fake_run)
    monkeypatch.setattr(adapt_runs, "build_set",
                        lambda name, folder, args: folder.mkdir(parents=True) or {"queries": 1})
    monkeypatch.setattr(adapt_runs, "evaluate_model", fake_eval)
    monkeypatch.setattr(adapt_runs, "evaluate_korsts", lambda model, args: {"model": model, **_sts(76.0, 72.0)})
    out = tmp_path / "out"
    adapt_runs.main(["--out", str(out), "--budgets", "15", "--sets", "chatbot", "--train-arg=--fine-tune",
                     "--map-on-top", "--map-arg=--batch-size", "--map-arg=16"])
    tuned, mapped = commands
    folder = out / "chatbot"
    assert tuned[tuned.index("--output") + 1] == str(folder / "adapted-15min") and "--fine-tune" in tuned
    assert "--model" not in tuned
    assert mapped[mapped.index("--model") + 1] == str(folder / "adapted-15min")
    assert mapped[mapped.index("--output") + 1] == str(folder / "adapted-15min-map")
    assert "--no-word-weights" in mapped and "--fine-tune" not in mapped and mapped[-2:] == ["--batch-size", "16"]
    assert evaluated == ["bundled", str(folder / "adapted-15min"), str(folder / "adapted-15min-map")]
    assert "| chatbot | adapt 15 min + map |" in (out / "adapt_runs.md").read_text(encoding="utf-8")
    with pytest.raises(SystemExit):  # the default adapted model has a map already
        adapt_runs.main(["--out", str(tmp_path / "refused"), "--map-on-top"])
    assert not (tmp_path / "refused").exists()
