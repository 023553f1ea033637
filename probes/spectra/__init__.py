"""Muon vs Adam: singular spectra and tail-class learning (METHODS.md section 4).

* `isotropy`: spectrum metrics (normalised SVD entropy, effective rank, top-k energy, Q75/Q25).
* `memory`: the paper's one-layer associative memory trained with GD, SignGD, Adam and Muon.
* `transformer`: a small transformer on synthetic heavy-tailed facts, Adam vs Muon (all, or VO+FFN only).
* `weights`: spectra of the VO products and FFN matrices of any loaded model.
"""

# Model identity for cache keys of the runs that need no language model (memory, small transformer).
SYNTHETIC_MODEL_IDENTITY = {"model_id": "synthetic", "revision": None, "content_digest": None}
