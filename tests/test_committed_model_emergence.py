"""Guard (emergence part): the default repeat-task run shows its phase change and learns to copy in context.

Emergence trains its own attention-only model from scratch, so this part does not load `models/organism`. It runs
the page's and the CLI's default configuration unchanged except for the seed: seed 1 is the run from issue 15 whose
copying is split over heads (top head 0.44), the case a per-head phase rule missed. About 30 s on one core.
"""

from __future__ import annotations

from probes.induction import emergence

SPLIT_HEAD_SEED = 1


def test_default_emergence_run_shows_a_phase_change_and_in_context_copying():
    result = emergence.train(emergence.TrainConfig(seed=SPLIT_HEAD_SEED))
    final = result.history[-1]
    assert result.phase_metric == "layer_induction_total"
    assert result.phase_change_step is not None and 0 < result.phase_change_step < result.config.steps
    assert final["layer_induction_total"] >= 0.6, final
    assert final["loss_ratio"] <= 0.25, final
