"""The sidebar's model catalog (Streamlit AppTest): picking an entry fills the name (and revision) field and shows the
memory need before any download; the checkpoint sweep offers a catalog model's checkpoints.

No hub is reachable here (HF_HUB_OFFLINE=1, tests/conftest.py): the load that follows a pick fails fast with one
clear message, as it does for a typed name. Widget state is preset before the first run because AppTest reruns only
the current page's file once the app has navigated (see tests/pages/test_app.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from probes import catalog
from probes.models import ModelSpec

ROOT = Path(__file__).resolve().parents[2]
HUB = "Hugging Face name or local folder"
GIB = 2**30


def start_app(monkeypatch: pytest.MonkeyPatch, free_gib: float = 8.0, **session_state: object) -> AppTest:
    monkeypatch.setattr(catalog, "available_memory", lambda device="auto": int(free_gib * GIB))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in session_state.items():
        app.session_state[key] = value
    return app.run()


def captions(app: AppTest) -> str:
    return "\n".join(caption.value for caption in app.sidebar.caption)


def test_catalog_lists_families_with_type_a_name_first(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = start_app(monkeypatch, model_source=HUB)
    assert not app.exception
    picker = app.sidebar.selectbox(key="model_catalog")
    assert picker.label == "Catalog"
    assert picker.options[0] == "(type a name)" and picker.value == "(type a name)"
    assert "Pythia · Pythia 70M" in picker.options and "GPT-2 · GPT-2 small" in picker.options
    assert len(picker.options) == len(catalog.entries()) + 1
    assert app.sidebar.text_input(key="model_name").value == ""
    assert any("Type a model name" in info.value for info in app.sidebar.info)


def test_picking_pythia_fills_the_name_and_shows_its_memory(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = start_app(monkeypatch, model_source=HUB, model_catalog="EleutherAI/pythia-70m")
    assert not app.exception
    assert app.sidebar.text_input(key="model_name").value == "EleutherAI/pythia-70m"
    assert app.sidebar.text_input(key="model_revision").value == ""
    checkpoints = app.sidebar.selectbox(key="model_catalog_revision")
    assert checkpoints.value == "(final)" and len(checkpoints.options) == 155
    assert checkpoints.options[1] == "step0" and checkpoints.options[-1] == "step143000"
    text = captions(app)
    assert "70.4M parameters" in text and "0.3 GiB at fp32" in text and "0.2 GiB at bf16" in text
    assert "open" in text and "base model" in text and "154 checkpoints" in text
    assert "Fits in this machine's memory (8.0 GiB free)" in text
    assert not app.sidebar.warning
    assert len(app.sidebar.error) == 1  # offline: the load fails with one clear message
    assert "EleutherAI/pythia-70m" in app.sidebar.error[0].value
    assert "Traceback" not in app.sidebar.error[0].value


def test_picking_a_checkpoint_fills_the_revision(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = start_app(monkeypatch, model_source=HUB, model_catalog="EleutherAI/pythia-160m",
                    model_catalog_revision="step1000")  # fmt: skip
    assert not app.exception
    assert app.sidebar.text_input(key="model_name").value == "EleutherAI/pythia-160m"
    assert app.sidebar.text_input(key="model_revision").value == "step1000"
    assert len(app.sidebar.error) == 1


def test_a_model_too_big_for_this_machine_gets_a_warning(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = start_app(monkeypatch, free_gib=16, model_source=HUB, model_catalog="meta-llama/Llama-3.1-8B",
                    model_dtype="bfloat16")  # fmt: skip
    assert not app.exception
    assert app.sidebar.text_input(key="model_name").value == "meta-llama/Llama-3.1-8B"
    assert not [box for box in app.sidebar.selectbox if box.key == "model_catalog_revision"]  # no checkpoints
    assert "gated" in captions(app) and "8.03B parameters" in captions(app)
    assert [warning.value for warning in app.sidebar.warning] == [
        "Needs about 19.4 GiB at bfloat16; this machine has 16.0 GiB free."
    ]


def test_a_typed_catalog_name_gets_the_same_facts(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = start_app(monkeypatch, model_source=HUB, model_name="Qwen/Qwen2.5-0.5B-Instruct", model_revision="main")
    assert not app.exception
    assert app.sidebar.selectbox(key="model_catalog").value == "(type a name)"
    assert app.sidebar.text_input(key="model_revision").value == "main"  # typing is never overwritten
    assert "494M parameters" in captions(app) and "instruction-tuned" in captions(app)


def test_the_checkpoint_sweep_offers_the_catalog_checkpoints(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "EleutherAI/pythia-70m"
    app = start_app(monkeypatch, model_spec=ModelSpec(name=name, device="cpu"))
    app.switch_page("pages/induction.py").run()
    assert not app.exception
    field = app.text_input(key=f"induction_revisions_{name}")
    subset = catalog.find(name).sweep_revisions
    assert field.value == ", ".join(subset) and field.value.startswith("step0, step1, step2, step4")
    assert any("154 hub checkpoints" in caption.value for caption in app.caption)
    assert any("Not scanned yet: step0" in info.value and "and 8 more" in info.value for info in app.info)
    app.checkbox(key=f"induction_all_revisions_{name}").check().run()
    assert not app.exception
    assert app.text_input(key=f"induction_revisions_{name}").disabled
    assert any("and 142 more" in info.value for info in app.info)
