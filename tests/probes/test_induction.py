"""The induction scan: a hand-built induction head ranks first; scores agree with TransformerLens' head_detector."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformer_lens.head_detector import detect_head

from probes.induction import attention, scores
from probes.induction.emergence import AttentionOnlyTransformer, ScratchModelConfig

VOCAB, SEQ_LEN = 12, 5
N_CTX = 2 * SEQ_LEN  # no BOS: the scratch model has no tokenizer
BIG = 30.0  # attention logit scale of the hand-set heads


def hand_built_induction_model() -> AttentionOnlyTransformer:
    """Layer 0 head 1 is a previous-token head, layer 1 head 2 an induction head; every other head is zero.

    Residual subspaces: token one-hot [0, V), position one-hot [V, V + n_ctx), previous token [V + n_ctx, 2V + n_ctx).
    """
    d_model, d_head = 2 * VOCAB + N_CTX, max(VOCAB, N_CTX)
    tok, pos, prev = 0, VOCAB, VOCAB + N_CTX
    cfg = ScratchModelConfig(n_layers=2, n_heads=3, d_model=d_model, d_head=d_head, d_vocab=VOCAB, n_ctx=N_CTX)
    model = AttentionOnlyTransformer(cfg)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.embed.weight[:, tok : tok + VOCAB] = torch.eye(VOCAB)
        model.W_pos[:, pos : pos + N_CTX] = torch.eye(N_CTX)
        previous = model.blocks[0].attn
        for p in range(N_CTX):
            previous.W_Q[1, pos + p, p] = BIG  # query at position p ...
            if p + 1 < N_CTX:
                previous.W_K[1, pos + p, p + 1] = BIG  # ... matches the key at position p - 1
        previous.W_V[1, tok : tok + VOCAB, :VOCAB] = torch.eye(VOCAB)  # copy the token ...
        previous.W_O[1, :VOCAB, prev : prev + VOCAB] = torch.eye(VOCAB)  # ... into the previous-token subspace
        induction = model.blocks[1].attn
        induction.W_Q[2, tok : tok + VOCAB, :VOCAB] = torch.eye(VOCAB) * BIG  # my token ...
        induction.W_K[2, prev : prev + VOCAB, :VOCAB] = torch.eye(VOCAB)  # ... equals your previous token
        induction.W_V[2, tok : tok + VOCAB, :VOCAB] = torch.eye(VOCAB)
        induction.W_O[2, :VOCAB, tok : tok + VOCAB] = torch.eye(VOCAB) * 10
        model.unembed.weight[:, tok : tok + VOCAB] = torch.eye(VOCAB)
    return model.eval()


def test_hand_built_induction_head_ranks_first():
    result = scores.run(hand_built_induction_model(), scores.ScanConfig(seq_len=SEQ_LEN, n_seqs=6, seed=1))
    top = result.top_heads()
    assert (int(top["layer"][0]), int(top["head"][0])) == (1, 2)
    assert top.induction[0] > 0.85  # no BOS: the first repeated token also matches position 0 (which sees itself)
    assert top.induction[1] < 0.5  # every other head attends uniformly
    assert result.best_head("previous_token")[:2] == (0, 1)
    assert result.scores["previous_token"][0, 1] > 0.95
    assert result.scores["copying"][1, 2] > 0.99  # W_E W_V W_O W_U is a multiple of the identity
    assert result.icl_score < -1.0  # the repeated half is predicted, the first half is not


def test_summary_shape_and_json_fields(tiny_model):
    result = scores.run(tiny_model, scores.ScanConfig(seq_len=8, n_seqs=2, top_k=3))
    summary = result.summary()
    n_layers, n_heads = tiny_model.cfg.n_layers, tiny_model.cfg.n_heads
    for name in ("induction", "previous_token", "duplicate_token", "copying"):
        assert np.asarray(summary[name]).shape == (n_layers, n_heads)
    assert len(summary["top_heads"]) == 3
    assert summary["top_heads"][0]["score"] == pytest.approx(max(max(row) for row in summary["induction"]), abs=1e-6)
    assert isinstance(summary["icl_score"], float)
    assert summary["bos_offset"] == 1
    losses = result.loss_frame()
    assert len(losses) == 2 * 8  # BOS + 2T tokens give 2T predictions
    assert set(losses.half) == {"first", "second", "first repeated token"}


def test_repeated_tokens_are_repeats_without_specials():
    tokens = scores.repeated_random_tokens(50, [0, 1, 2], n_seqs=4, seq_len=10, bos=2, seed=3)
    assert tokens.shape == (4, 21)
    assert (tokens[:, 0] == 2).all()
    assert torch.equal(tokens[:, 1:11], tokens[:, 11:])
    assert not torch.isin(tokens[:, 1:], torch.tensor([0, 1, 2])).any()
    assert all(len(set(row.tolist())) == 10 for row in tokens[:, 1:11])  # no accidental repeats
    assert torch.equal(tokens, scores.repeated_random_tokens(50, [0, 1, 2], 4, 10, 2, seed=3))
    with pytest.raises(ValueError):
        scores.repeated_random_tokens(10, [0], n_seqs=1, seq_len=20, bos=None, seed=0)


HEAD_DETECTOR_TOLERANCE = 1e-5  # same float32 patterns; only the summation order differs


def test_scores_agree_with_head_detector(tiny_model):
    """head_detector ("mul", no exclusions) over 2T+1 rows = ours (second-half rows) x T / (2T + 1)."""
    cfg = scores.ScanConfig(seq_len=12, n_seqs=3, seed=5, copying=False)
    result = scores.run(tiny_model, cfg)
    vocab, special = scores.sampling_vocabulary(tiny_model)
    tokens = scores.repeated_random_tokens(vocab, special, cfg.n_seqs, cfg.seq_len, tiny_model.tokenizer.bos_token_id,
                                           cfg.seed)  # fmt: skip
    texts = [tiny_model.tokenizer.decode(row[1:]) for row in tokens]
    assert all(torch.equal(tiny_model.to_tokens(text)[0].cpu(), row) for text, row in zip(texts, tokens, strict=False))
    factor = cfg.seq_len / (2 * cfg.seq_len + 1)
    for ours, theirs in (("induction", "induction_head"), ("duplicate_token", "duplicate_token_head")):
        detected = detect_head(tiny_model, texts, theirs, error_measure="mul")  # mean over the texts
        np.testing.assert_allclose(result.scores[ours] * factor, detected.numpy(), atol=HEAD_DETECTOR_TOLERANCE)
    n_pos = 2 * cfg.seq_len + 1
    second_half_previous = torch.zeros(n_pos, n_pos)
    second_half_previous[torch.arange(1 + cfg.seq_len, n_pos), torch.arange(cfg.seq_len, n_pos - 1)] = 1.0
    detected = torch.stack([detect_head(tiny_model, text, second_half_previous) for text in texts]).mean(0)
    np.testing.assert_allclose(result.scores["previous_token"] * factor, detected.numpy(), atol=HEAD_DETECTOR_TOLERANCE)


def test_copying_score_is_bounded_and_sign_sensitive(tiny_model):
    copying = scores.copying_scores(tiny_model)
    assert copying.shape == (tiny_model.cfg.n_layers, tiny_model.cfg.n_heads)
    assert np.all(np.abs(copying) <= 1 + 1e-6)
    model = hand_built_induction_model()
    with torch.no_grad():
        model.blocks[1].attn.W_O[2] *= -1  # an anti-copying head
    assert scores.copying_scores(model)[1, 2] < -0.99


def test_best_induction_score_is_the_scan_maximum(tiny_model):
    best = scores.best_induction_score(tiny_model, seq_len=8, n_seqs=2, seed=0)
    result = scores.run(tiny_model, scores.ScanConfig(seq_len=8, n_seqs=2, seed=0, copying=False))
    assert best == pytest.approx(float(result.scores["induction"].max()))


def test_scan_rejects_sequences_longer_than_the_context(tiny_model):
    with pytest.raises(ValueError, match="context"):
        scores.run(tiny_model, scores.ScanConfig(seq_len=tiny_model.cfg.n_ctx, n_seqs=1))


def test_text_attention_marks_induction_targets(tiny_model):
    cfg = attention.TextAttentionConfig(text="lede madi . lede madi", layer=1, head=0)
    result = attention.run(tiny_model, cfg)
    frame = result.to_frame()
    assert result.tokens[0] == tiny_model.tokenizer.bos_token
    n = len(result.tokens)
    assert len(frame) == n * (n + 1) // 2
    np.testing.assert_allclose(frame.groupby("query").attention.sum(), 1.0, atol=1e-5)
    targets = frame[frame.induction_target]
    # the second "lede" attends to the first "madi", the second "madi" to the "." after it
    assert list(zip(targets["query"], targets["key"], strict=True)) == [(4, 2), (5, 3)]
    assert result.summary()["induction_attention"] is not None
