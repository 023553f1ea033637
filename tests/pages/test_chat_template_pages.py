"""The prompt-format switch on the pages (issue 16): on a model with a chat template the steering and poisoned pages
say the prompts went through it and show the first one as the model read it; 'Plain text' turns it off."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from probes.models import ModelSpec
from tests.pages.test_poisoned_page import paste, tiny_items
from tests.pages.test_steering_page import APP, TIMEOUT, paste_tiny_sets


def open_on(model_dir: Path, page: str, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["model_spec"] = ModelSpec(name=str(model_dir), device="cpu")
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    return at.switch_page(page).run()


def prompt_captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("Prompts as the model read them")]


def test_steering_page_reads_prompts_through_the_template_unless_switched_off(chat_model_dir, store_path) -> None:
    at = paste_tiny_sets(open_on(chat_model_dir, "pages/steering.py", steering_sweep="0,1", steering_n_facts=4))
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="steering_chat_template").value == "auto"
    assert prompt_captions(at) and "(chat)" in prompt_captions(at)[0]
    at.selectbox(key="steering_chat_template").set_value("off").run()
    assert not at.exception and prompt_captions(at) and "(plain)" in prompt_captions(at)[0]


def test_poisoned_page_reads_prompts_through_the_template(chat_model_dir, store_path) -> None:
    at = paste(open_on(chat_model_dir, "pages/poisoned.py"), json.dumps(tiny_items()))
    at.slider(key="poisoned-n-items").set_value(4)
    at.select_slider(key="poisoned-steps").set_value(2)
    at.number_input(key="poisoned-bootstrap").set_value(0)
    at.button[0].click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert prompt_captions(at) and "(chat)" in prompt_captions(at)[0]
