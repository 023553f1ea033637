"""Published references and paper presets (probes/data/references.json): schema, lookup, and METHODS.md's numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from probes import references
from probes.references import NO_PRESET, ReferencesError, read_presets, read_references

ROOT = Path(__file__).resolve().parents[2]
METHODS = ROOT.parent / "shared" / "METHODS.md"  # read in place, never copied into the repository
DRAWING_CODE = [*(ROOT / "probes" / "figures").glob("*.py"), *(ROOT / "pages").rglob("*.py")]


def raw() -> dict:
    return json.loads(references.REFERENCES_PATH.read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "references.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------- schema


def test_every_reference_has_a_citation_units_and_numbers() -> None:
    found = references.load_references()
    assert set(found) == {
        "muon-memory-balance", "muon-tail-accuracy", "muon-validation-loss", "rw-qwen2-curve", "rw-steering-quality",
        "rw-steering-fakenews", "flexac-published", "olsson-phase-change",
    }  # fmt: skip
    for reference in found.values():
        assert reference.citation.title and reference.citation.venue and 2020 <= reference.citation.year <= 2026
        assert reference.what and reference.units
        assert reference.values or reference.points or reference.bands, reference.id
        assert reference.citation.title in reference.source()
    assert "read off the paper's figure" in found["rw-qwen2-curve"].source()
    assert [r.id for r in found.values() if r.read_off_figure] == ["rw-qwen2-curve"]


def test_lookup_by_id() -> None:
    assert references.reference("muon-memory-balance").values["muon"] == pytest.approx(0.904)
    with pytest.raises(KeyError, match="no-such-paper"):
        references.reference("no-such-paper")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["references"][0].pop("cite"), r"references\[0\] \(muon-memory-balance\)\.cite"),
        (lambda d: d["references"][1]["values"].update(muon="high"), r"references\[1\] \(muon-tail-accuracy\)\.values"),
        (lambda d: d["references"][2].pop("values"), r"references\[2\] \(muon-validation-loss\) has no numbers"),
        (lambda d: d["references"][3]["points"].update(qwen2=[[10]]), r"references\[3\] \(rw-qwen2-curve\)\.points"),
        (lambda d: d["references"][4]["bands"].update(rw_steering=[78, 74]), r"rw-steering-quality\)\.bands"),
        (lambda d: d["references"][5].update(colour="red"), r"rw-steering-fakenews\) has unknown keys"),
        (lambda d: d["citations"]["muon"].pop("year"), r"citations\['muon'\]\.year"),
        (lambda d: d["references"].append(d["references"][0]), r"\(muon-memory-balance\) repeats an id"),
    ],
)
def test_a_malformed_reference_names_its_entry(tmp_path: Path, change, message: str) -> None:
    data = raw()
    change(data)
    with pytest.raises(ReferencesError, match=message):
        read_references(write(tmp_path, data))


def test_unreadable_files_raise_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReferencesError, match="cannot be read"):
        read_references(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ReferencesError, match="not valid JSON"):
        read_references(broken)
    assert issubclass(ReferencesError, ValueError)


def test_presets_never_switch_the_sidebar_model(tmp_path: Path) -> None:
    data = raw()
    data["presets"]["poisoned"][0]["widgets"]["model_name"] = "Qwen/Qwen2-1.5B-Instruct"
    with pytest.raises(ReferencesError, match=r"presets\['poisoned'\]\[0\] \(rw-testbed-qwen2\)\.widgets"):
        read_presets(write(tmp_path, data))
    for preset in (p for page in references.PAGES for p in references.presets(page)):
        assert not references.SIDEBAR_KEYS & set(preset.state(12))


def test_every_probe_page_has_presets_with_a_citation() -> None:
    for page in references.PAGES:
        options = references.preset_options(page)
        assert options[0] == NO_PRESET and len(options) > 1
        for label in options[1:]:
            notes = references.preset_notes(page, label)
            assert notes[-1].startswith("Paper settings from ") and references.preset(page, label).citation.title
    assert references.preset_state("spectra", NO_PRESET) == {} and references.preset_notes("spectra", NO_PRESET) == []


def test_hub_presets_say_what_to_load_and_how() -> None:
    poisoned = " ".join(references.preset_notes("poisoned", references.preset_options("poisoned")[1]))
    assert "Qwen/Qwen2-1.5B-Instruct" in poisoned and "'Model name or folder'" in poisoned and "--model" in poisoned
    assert "Poisoned Context Testbed" in poisoned and "Upload a file" in poisoned
    olsson = " ".join(references.preset_notes("induction", references.preset_options("induction")[1]))
    assert "EleutherAI/pythia-160m-deduped" in olsson and "Checkpoint sweep" in olsson


def test_steering_layers_sit_at_half_depth() -> None:
    rule = references.presets("steering")[0].layers
    assert rule.layers(12) == [4, 5, 6] and rule.layers(24) == [10, 11, 12] and rule.layers(2) == [0, 1]
    for n_layers in (6, 11, 12, 13, 24, 32):
        layers = rule.layers(n_layers)
        assert len(layers) == 3 and layers == list(range(layers[0], layers[0] + 3))
        middle = (layers[1] + 1) / n_layers
        assert abs(middle - sum(rule.depth) / 2) <= 1 / n_layers


def test_drawing_code_has_no_published_literals() -> None:
    """Published numbers reach figures and pages only through references.json."""
    distinctive = {f"{v:g}" for r in references.load_references().values() for v in r.values.values() if v % 1}
    distinctive |= {f"{y:g}" for r in references.load_references().values() for s in r.points.values() for _, y in s}
    distinctive = {number for number in distinctive if len(number) >= 4}  # 0.904, 74.1, ... (not 0.1 or 20)
    for path in DRAWING_CODE:
        text = path.read_text(encoding="utf-8")
        assert not [n for n in distinctive if re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", text)], path


# ------------------------------------------------------------------------------------------------ METHODS.md


@pytest.fixture(scope="module")
def methods() -> str:
    if not METHODS.is_file():
        pytest.skip("../shared/METHODS.md is not present in this checkout")
    return " ".join(METHODS.read_text(encoding="utf-8").split())  # one line: the text wraps mid-sentence


def numbers(pattern: str, text: str) -> list[float]:
    found = re.search(pattern, text)
    assert found, pattern
    return [float(group.rstrip(".")) for group in found.groups()]  # a number may end a sentence


def test_muon_numbers_equal_methods(methods: str) -> None:
    found = references.load_references()
    muon, gd, signgd = numbers(r"Muon ([\d.]+); GD ([\d.]+); SignGD ([\d.]+) with random orthogonal", methods)
    assert found["muon-memory-balance"].values == {"muon": muon, "gd": gd, "signgd": signgd}
    tail = numbers(
        r"tail-group first-token accuracy Muon ([\d.]+) vs Adam ([\d.]+); Muon on VO\+FFN only ([\d.]+); "
        r"Muon on QK only (\d+\.\d+)",
        methods,
    )
    assert found["muon-tail-accuracy"].values == dict(
        zip(["muon", "adam", "muon_vo_ffn", "muon_qk"], tail, strict=True)
    )
    adam_loss, muon_loss = numbers(r"Validation loss Adam ([\d.]+), Muon ([\d.]+)", methods)
    assert found["muon-validation-loss"].values == {"adam": adam_loss, "muon": muon_loss}
    k, eps = numbers(r"K=d=(\d+), p_k ~ 1/k, eps=([\d.]+)", methods)
    widgets = references.presets("spectra")[0].widgets
    assert (widgets["mem_k"], widgets["mem_d"], widgets["mem_eps"], widgets["mem_zipf"]) == (k, k, eps, 1.0)
    assert widgets["mem_steps"] == numbers(r"A (\d+)-step numpy check", methods)[0]


def test_rw_numbers_equal_methods(methods: str) -> None:
    found = references.load_references()
    read_off = re.search(r"read off the paper's figure for Qwen2: (.*?)\)", methods)
    assert read_off
    pairs = [(float(x), float(y)) for x, y in re.findall(r"(\d+)% (?:share )?-> ~(\d+)%", read_off.group(1))]
    assert found["rw-qwen2-curve"].points == {"qwen2": tuple(pairs)} and len(pairs) == 4
    quality = re.search(
        r"baseline quality at ([\d/]+)% inappropriate: ([\d./]+), RW-Steering (\d+)-(\d+) at every ratio", methods
    )
    assert quality
    shares, values = ([float(v) for v in quality.group(i).split("/")] for i in (1, 2))
    assert found["rw-steering-quality"].points == {"baseline": tuple(zip(shares, values, strict=True))}
    assert found["rw-steering-quality"].bands == {"rw_steering": (float(quality.group(3)), float(quality.group(4)))}
    assert found["rw-steering-quality"].values == {
        "quality_gain_percent": numbers(r"response quality \+([\d.]+)%", methods)[0]
    }
    before_c, after_c, before_l, after_l = numbers(
        r"Qwen2-1.5B fake news Consistency ([\d.]+) -> ([\d.]+), Cleanliness ([\d.]+) -> ([\d.]+)", methods
    )
    assert found["rw-steering-fakenews"].values == {
        "consistency_before": before_c, "consistency_after": after_c,
        "cleanliness_before": before_l, "cleanliness_after": after_l,
    }  # fmt: skip
    widgets = references.presets("poisoned")[0].widgets
    n_items = numbers(r"Contexts of ~(\d+) items", methods)[0]
    step = numbers(r"varies 0-100% \((\d+)% steps\)", methods)[0]
    assert widgets["poisoned-n-items"] == widgets["mitigate-n-items"] == n_items
    assert widgets["poisoned-steps"] == widgets["mitigate-steps"] == 100 / step
    assert "Qwen/Qwen2-1.5B-Instruct" in " ".join(references.presets("poisoned")[0].notes)


def test_flexac_and_olsson_numbers_equal_methods(methods: str) -> None:
    found = references.load_references()
    gain, fewer = numbers(r"up to ([\d.]+)x creativity on Creation-MMBench and (\d+)% fewer hallucinations on CHAIR",
                          methods)  # fmt: skip
    assert found["flexac-published"].values == {"creativity_gain_max": gain, "hallucination_reduction_percent": fewer}
    late, early = numbers(r"Olsson: token (\d+) minus token (\d+)", methods)
    assert found["olsson-phase-change"].values == {"icl_late_token": late, "icl_early_token": early}
    assert "phase change" in methods and "phase change" in found["olsson-phase-change"].what
    preset = references.presets("steering")[0]
    assert preset.widgets["steering_pairs"] == numbers(r"top N pairs .*?N=(\d+) in the release", methods)[0]
    low, high = numbers(r"about (\d+)-(\d+)% of depth", methods)
    assert preset.layers.depth == (low / 100, high / 100)
    assert preset.layers.count == numbers(r"the release used (\d+) consecutive layers", methods)[0]
    reddy = next(p for p in references.presets("induction") if p.id == "reddy-bursty")
    assert reddy.widgets["induction_n"] == numbers(r"a sequence has N=(\d+) \(item, label\) pairs", methods)[0]
