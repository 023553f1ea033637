"""Benchmark cases, one module per probe (plus `cache`). Each module defines

    def rows(model, model_label: str, quick: bool) -> list[dict]

returning rows built with `bench.timing.comparison_row` (probe vs its natural baseline, measured side by side).
`model` is a loaded TransformerBridge (the embedded organism, or a random-initialised GPT-2-small-sized config);
a case that needs no language model may ignore it and return rows only for one `model_label`.
"""
