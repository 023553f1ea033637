"""The embedded "model organism": a small GPT-2 trained on a generated world whose ground truth is known.

Modules: `world` (entities and facts), `corpus` (training text and the probes' default inputs), `tokenizer`
(word-level tokenizer), `train` (one-command training), `evaluate` (the measured numbers), `card` (model card).
Pure computation: no Streamlit, no DuckDB.
"""
