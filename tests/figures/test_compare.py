"""The compare view's pure part (probes/figures/compare.py) on real induction scans of the embedded organism's
checkpoints, computed once per module."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from probes.figures import LabelledRun, compare
from probes.figures import induction as induction_figures
from probes.induction import scores
from probes.models import ModelSpec, load_model

SCAN = scores.ScanConfig(seq_len=10, n_seqs=2)
REVISIONS = ("step-250", "step-750")


def stored_like(run_id: str, revision: str | None, result, model_id: str = "organism", **extra) -> SimpleNamespace:
    """What `cache.StoredRun` hands the compare view: ids, model, revision, config, summary and tables."""
    fields = {"run_id": run_id, "probe": scores.NAME, "model_id": model_id, "revision": revision,
              "config": dict(result.config), "summary": result.summary(), "tables": result.to_tables()}  # fmt: skip
    return SimpleNamespace(**{**fields, **extra})


@pytest.fixture(scope="module")
def scans() -> list:
    return [scores.run(load_model(ModelSpec(name="organism", revision=revision, device="cpu")), SCAN)
            for revision in REVISIONS]  # fmt: skip


@pytest.fixture(scope="module")
def runs(scans) -> list[LabelledRun]:
    stored = [stored_like(f"{index}" * 64, revision, scan) for index, (revision, scan) in
              enumerate(zip(REVISIONS, scans, strict=True), start=1)]  # fmt: skip
    return compare.labelled_runs(stored)


def test_module_imports_no_streamlit_duckdb_torch_or_cache():
    tree = ast.parse(Path(compare.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name.split(".")[0] for name in imported} & {"streamlit", "duckdb", "torch", "cache", "pages"}


def test_comparison_for_finds_induction_and_none_for_an_unknown_probe():
    assert compare.comparison_for("induction") is induction_figures.COMPARISONS["induction"]
    assert compare.comparison_for("induction-emergence") is induction_figures.COMPARISONS["induction-emergence"]
    assert compare.comparison_for("no-such-probe") is None
    probes = compare.comparable_probes()
    assert "induction" in probes and probes == sorted(probes)


def test_labelled_runs_carry_the_stored_parts_and_the_comparison_draws_them(runs):
    assert [run.label for run in runs] == ["organism@step-250", "organism@step-750"]
    assert [run.revision for run in runs] == list(REVISIONS)
    assert all(run.probe == "induction" and "head_scores" in run.tables for run in runs)
    figures = compare.comparison_for("induction").figures(runs)
    assert [figure.layout.title.text for figure in figures] == ["Induction score per head, by run",
                                                                 "Top induction score vs training step"]  # fmt: skip


def test_labels_are_unique_short_and_readable(scans):
    scan = scans[0]
    long_model = "EleutherAI/pythia-70m-deduped-with-a-very-long-name-indeed"
    rows = [
        stored_like("a" * 64, "step-250", scan),
        stored_like("b" * 64, "step-750", scan, config={"seq_len": 10, "seed": 0}),
        stored_like("c" * 64, "step-750", scan, config={"seq_len": 10, "seed": 1}),  # differs only by its seed
        stored_like("d" * 64, "step143000", scan, model_id=long_model),
        stored_like("e" * 64, "step143000", scan, model_id=long_model),  # the same everywhere: the run id decides
        stored_like("f" * 64, None, scan, model_id="gemma", summary={"steer": {"strength": 4.0}}),
        stored_like("g" * 64, None, scan, model_id="gemma", summary={"steer": {"strength": -2.5}}),
        stored_like("h" * 64, None, scan, model_id="qwen", config={"judge_first": True}),
        stored_like("i" * 64, None, scan, model_id="qwen", config={"judge_first": False}),
    ]
    labels = compare.run_labels(rows)
    assert len(set(labels)) == len(labels), labels
    assert all(len(label) <= compare.MAX_LABEL for label in labels), labels
    assert labels[0] == "organism@step-250"
    assert labels[1:3] == ["organism@step-750 · seed=0", "organism@step-750 · seed=1"]
    assert labels[3].startswith("pythia-70m-deduped") and labels[3].endswith(" · dddddddd")
    assert labels[4].endswith(" · eeeeeeee")
    assert labels[5:7] == ["gemma · strength +4", "gemma · strength -2.5"]
    assert labels[7] == "qwen · judge first" and labels[8] != labels[7]


def test_labels_keep_the_organisation_when_two_models_share_a_name(scans):
    rows = [stored_like("a" * 64, None, scans[0], model_id="org-a/model"),
            stored_like("b" * 64, None, scans[0], model_id="org-b/model")]  # fmt: skip
    assert compare.run_labels(rows) == ["org-a/model", "org-b/model"]


def test_labels_read_rows_of_the_run_history():
    history = pd.DataFrame({"run_id": ["a" * 64, "b" * 64], "model_id": ["organism", "organism"],
                            "revision": [None, None], "config_json": ['{"seed": 0}', '{"seed": 3}']})  # fmt: skip
    rows = [row for _, row in history.iterrows()]
    assert compare.run_labels([row.to_dict() for row in rows]) == ["organism · seed=0", "organism · seed=3"]


def test_check_same_probe_raises_on_mixed_probes_and_on_one_run():
    compare.check_same_probe(["induction", "induction"])
    with pytest.raises(ValueError) as mixed:
        compare.check_same_probe(["induction", "spectra-memory", "induction"])
    message = str(mixed.value)
    assert message.startswith("Runs of different probes cannot be compared: ")
    assert "induction (2 runs)" in message and "spectra-memory (1 run)" in message
    assert message.endswith("pick runs of one probe.")
    for few in ([], ["induction"]):
        with pytest.raises(ValueError, match="at least two runs"):
            compare.check_same_probe(few)


def test_headline_table_has_one_column_per_run(runs):
    comparison = compare.comparison_for("induction")
    table = compare.headline_table(runs, comparison)
    assert list(table.columns) == [run.label for run in runs]
    assert table.index.name == "field"
    assert list(table.index[:4]) == ["run id", "model", "revision", "top head"]
    assert list(table.loc["run id"]) == [run.run_id[:12] for run in runs]
    assert list(table.loc["revision"]) == list(REVISIONS)
    for run in runs:
        headline = comparison.headline(run)
        assert table.loc["top induction score", run.label] == compare.format_value(headline["top induction score"])
        assert float(table.loc["top induction score", run.label]) == pytest.approx(
            headline["top induction score"], rel=1e-3
        )


def test_headline_table_marks_a_field_one_run_lacks(runs):
    without_icl = LabelledRun(**{**runs[1].__dict__, "summary": {}, "label": "no ICL"})
    table = compare.headline_table([runs[0], without_icl], compare.comparison_for("induction"))
    assert table.loc["ICL score (nats)", "no ICL"] == compare.MISSING
    assert table.loc["ICL score (nats)", runs[0].label] != compare.MISSING


def test_format_value():
    assert compare.format_value(None) == compare.MISSING
    assert compare.format_value(float("nan")) == compare.MISSING
    assert compare.format_value(True) == "yes"
    assert compare.format_value(12345) == "12,345"
    assert compare.format_value(0.123456) == "0.1235"
    assert compare.format_value(123456.7) == "123,457"
    assert compare.format_value("L1H2") == "L1H2"


def test_export_frame_puts_the_full_run_id_beside_the_label(runs):
    overlaid = compare.comparison_for("induction").overlaid(runs)
    frame = compare.export_frame(overlaid, runs)
    assert list(frame.columns[:2]) == ["run", "run_id"]
    assert set(frame["run_id"]) == {run.run_id for run in runs}
    assert len(frame) == len(overlaid) and "run_id" not in overlaid.columns


def test_run_ids_from_the_url():
    known = ["abcdef0123456789" + "0" * 48, "abcdef0199999999" + "1" * 48, "fedcba9876543210" + "2" * 48]
    assert compare.parse_run_ids(" abcdef01234567,fedcba98 ,,abcdef01234567") == ["abcdef01234567", "fedcba98"]
    assert compare.parse_run_ids(["a,b", "c"]) == ["a", "b", "c"]
    assert compare.parse_run_ids(None) == []
    assert compare.resolve_run_ids(["abcdef0123", known[2]], known) == [known[0], known[2]]
    with pytest.raises(ValueError, match="no stored run has the id '0123456789'"):
        compare.resolve_run_ids(["0123456789", "fedcba98"], known)
    with pytest.raises(ValueError, match="shorter than 8 characters"):
        compare.resolve_run_ids(["fedcba9"], known)
    with pytest.raises(ValueError, match="'abcdef01' matches several runs"):
        compare.resolve_run_ids(["abcdef01"], known)


def test_share_ids_are_short_and_unique():
    known = ["abcdef0123456789" + "0" * 48, "abcdef0123459999" + "1" * 48, "fedcba9876543210" + "2" * 48]
    shared = compare.share_ids([known[0], known[2]], known)
    assert shared == [known[0][:16], known[2][:12]]
    assert compare.resolve_run_ids(shared, known) == [known[0], known[2]]
