"""Emergence: the phase-change rule, Reddy's bursty data, and a short training run's records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probes.induction import emergence, tasks


def test_phase_change_is_the_steepest_rise_of_the_smoothed_metric():
    steps = list(range(0, 2001, 100))
    values = [0.02 + 0.9 / (1 + np.exp(-(step - 1200) / 60)) for step in steps]  # jump around step 1200
    assert emergence.phase_change_step(steps, values) in (1200, 1300)


def test_no_phase_change_below_threshold_or_without_records():
    steps = list(range(0, 1001, 100))
    assert emergence.phase_change_step(steps, [0.02 + 0.001 * i for i in range(len(steps))]) is None
    assert emergence.phase_change_step([0], [0.9]) is None


def test_phase_change_ignores_a_single_spike():
    steps = list(range(0, 1100, 100))
    values = [0.0] * 3 + [0.6] + [0.0] * 3 + [0.5, 0.7, 0.8, 0.8]  # one-record spike at 300, real rise at 700-800
    assert emergence.phase_change_step(steps, values) in (700, 800)


SPEC = tasks.BurstySpec(n_classes=64, burstiness=4, p_bursty=1.0, n_pairs=8)


def test_bursty_sequences_hold_b_copies_of_n_over_b_classes_and_the_query_among_them():
    world = tasks.BurstyWorld.build(SPEC, seed=0)
    batch = tasks.training_batch(world, 64, torch.Generator().manual_seed(1))
    assert batch.inputs.shape == (64, 17, SPEC.d_model)
    for classes, query in zip(batch.item_classes, batch.query_class, strict=True):
        values, counts = classes.unique(return_counts=True)
        assert len(values) == 2 and (counts == 4).all()
        assert query in values
    assert torch.equal(batch.targets, world.class_labels[batch.query_class])
    label_rows = batch.inputs[:, 1:16:2, : SPEC.dim]  # labels at odd positions
    assert torch.allclose(label_rows, world.label_vectors[world.class_labels[batch.item_classes]])
    assert torch.equal(batch.inputs[0, :, SPEC.dim :], torch.eye(17))  # one-hot positions


def test_items_scatter_around_their_class_means():
    world = tasks.BurstyWorld.build(SPEC, seed=0)
    batch = tasks.training_batch(world, 32, torch.Generator().manual_seed(2))
    items = batch.inputs[:, 0:16:2, : SPEC.dim]
    means = world.means[batch.item_classes]
    cosine = torch.nn.functional.cosine_similarity(items, means, dim=-1)
    assert cosine.mean() > 0.95  # eps = 0.1


def test_non_bursty_sequences_follow_zipf():
    spec = tasks.BurstySpec(n_classes=64, burstiness=4, p_bursty=0.0, zipf_alpha=1.5)
    world = tasks.BurstyWorld.build(spec, seed=0)
    batch = tasks.training_batch(world, 512, torch.Generator().manual_seed(3))
    counts = torch.bincount(batch.item_classes.flatten(), minlength=64).float()
    assert counts[0] > 5 * counts[10] > 0  # rank 1 is far more frequent than rank 11 (ratio 11^1.5 = 36)


def test_iwl_queries_are_absent_from_the_context_and_flipped_labels_contradict_training():
    world = tasks.BurstyWorld.build(SPEC, seed=0)
    generator = torch.Generator().manual_seed(4)
    iwl = tasks.iwl_batch(world, 128, generator)
    assert not (iwl.item_classes == iwl.query_class[:, None]).any()
    assert torch.equal(iwl.targets, world.class_labels[iwl.query_class])
    flipped = tasks.novel_batch(world, 128, 4, generator, flipped=True)
    assert (flipped.targets != world.class_labels[flipped.query_class]).all()
    novel = tasks.novel_batch(world, 128, 4, generator, flipped=False)
    assert (novel.query_class >= SPEC.n_classes).all()


def test_bad_bursty_parameters_are_refused():
    with pytest.raises(ValueError, match="divide"):
        tasks.BurstySpec(burstiness=3, n_pairs=8).validate()
    with pytest.raises(ValueError, match="Unknown task"):
        emergence.train(emergence.TrainConfig(task="dfa"))


def test_short_repeat_run_records_every_interval_and_stores_weights():
    seen: list[int] = []
    cfg = emergence.TrainConfig(steps=30, record_every=10, seq_len=6, vocab_size=16, eval_seqs=8, batch_size=8)
    result = emergence.train(cfg, on_record=lambda record: seen.append(record["step"]))
    assert seen == [0, 10, 20, 30]
    frame = result.to_frame()
    assert list(frame.step) == seen
    assert frame.loss.iloc[-1] < frame.loss.iloc[0]  # training reduces the loss on the repeated half
    from safetensors.torch import load

    weights = load(result.files()["model.safetensors"])
    assert weights["blocks.1.attn.W_Q"].shape == (4, 64, 16)
    assert set(result.final_heads.columns) >= {"layer", "head", "induction", "previous_token"}
    assert result.summary()["phase_metric"] == "layer_induction_total"


def test_repeat_records_carry_the_loss_ratio_and_the_best_layer_total():
    cfg = emergence.TrainConfig(steps=20, record_every=10, seq_len=6, vocab_size=16, eval_seqs=8, batch_size=8)
    result = emergence.train(cfg)
    for record in result.history:
        assert record["loss_ratio"] == pytest.approx(record["loss"] / record["first_half_loss"])
        assert record["best_layer"] in (0, 1)
        assert record["layer_induction_total"] >= record["induction_score"] - 1e-6  # a sum of non-negative scores
    per_layer = result.final_heads.groupby("layer")["induction"].sum()  # the final model, the same eval batch
    assert result.history[-1]["layer_induction_total"] == pytest.approx(per_layer.max(), abs=1e-6)
    assert result.history[-1]["best_layer"] == int(per_layer.idxmax())


def test_best_layer_total_sums_heads_so_split_copying_counts():
    induction = np.array([[0.50, 0.02, 0.01, 0.03], [0.40, 0.38, 0.41, 0.05]])  # top head in layer 0, split in 1
    layer, total = emergence.best_layer_total(induction)
    assert layer == 1 and total == pytest.approx(1.24)


def split_head_history() -> list[dict]:
    """Copying split evenly over four heads: the top head ends at 0.25, the layer total jumps to 1.0 at step 1000."""
    steps = range(0, 2001, 50)
    rise = [1 / (1 + np.exp(-(step - 1000) / 40)) for step in steps]
    return [{"step": step, "induction_score": 0.02 + 0.23 * r, "layer_induction_total": 0.09 + 0.91 * r}
            for step, r in zip(steps, rise, strict=True)]  # fmt: skip


def test_phase_change_is_found_on_the_layer_total_when_the_top_head_stays_low():
    result = emergence.EmergenceResult(emergence.TrainConfig(), split_head_history(), None, b"", 0.0)
    assert max(record["induction_score"] for record in result.history) < emergence.PHASE_THRESHOLDS["repeat"]
    assert result.phase_change_step in (1000, 1050)


def test_repeat_training_is_deterministic_per_seed():
    cfg = emergence.TrainConfig(steps=10, record_every=5, seq_len=5, vocab_size=12, eval_seqs=4, batch_size=4)
    first, second = emergence.train(cfg).history, emergence.train(cfg).history
    assert first == second
