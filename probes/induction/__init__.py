"""Induction heads: scan any model, train a small attention-only model and watch them emerge, sweep checkpoints.

See METHODS.md section 1. Modules: `scores` (the scan), `attention` (one head's pattern on user text),
`tasks` (training data), `emergence` (attention-only model and training loop), `sweep` (checkpoints).
"""

from probes.induction.scores import NAME, VERSION, ScanConfig, ScanResult, best_induction_score, run

__all__ = ["NAME", "VERSION", "ScanConfig", "ScanResult", "best_induction_score", "run"]
