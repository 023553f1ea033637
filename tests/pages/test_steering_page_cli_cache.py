"""One request, one key: a steering run the CLI computed is what the page serves (issue 20, defaults resolved)."""

from __future__ import annotations

import json

import pytest

from probes.cli import main
from probes.models import EMBEDDED_MODEL_DIR
from tests.pages.test_steering_page import open_page

pytestmark = pytest.mark.skipif(
    not (EMBEDDED_MODEL_DIR / "data" / "steering_prompts.json").is_file(), reason="the trained organism is absent"
)


def test_page_serves_the_vector_and_sweep_the_cli_stored(store_path, capsys) -> None:
    assert main(["steering", "sweep", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    at = open_page(None)  # the organism and every page default
    assert not at.exception, at.exception
    captions = [caption.value for caption in at.caption]
    for run_id in (cli["vector_run_id"], cli["run_id"]):
        shown = [text for text in captions if f"Run `{run_id[:12]}`" in text]
        assert shown and "served from the cache" in shown[0], (run_id[:12], captions)
