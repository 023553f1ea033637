"""The embedded "model organism": a small Llama-architecture model trained on a generated world with known ground truth.

Modules: `world` (entities and facts), `corpus` (training text and the probes' default inputs), `tokenizer`
(word-level tokenizer), `train` (one-command training), `evaluate` (the measured numbers), `card` (model card).
Pure computation: no Streamlit, no DuckDB.
"""
