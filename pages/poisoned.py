"""Poisoned context (Rescorla-Wagner): how a share of inappropriate context shifts answers, and one context up close.

This file is the page: its title, the testbed choice and the tabs. Each tab's UI lives in pages/poisoned_tabs/
(`inputs` the testbed widgets, `curves` and `steered` the curves tab, `explore` the one-context tab; a sub-package
because every top-level file in pages/ counts as a page) and draws its figures through probes/figures/poisoned.py.
"""

from __future__ import annotations

import streamlit as st

from pages.common import about_box, paper_header
from pages.poisoned_tabs.curves import curves_tab
from pages.poisoned_tabs.explore import explore_tab
from pages.poisoned_tabs.inputs import read_testbed
from pages.poisoned_tabs.mitigate import mitigate_tab

# The tabs, in order: (label, function drawing the tab from the chosen testbed, None when there is none, and the
# published references to draw, None when hidden).
TABS = [
    ("Curves", curves_tab),
    ("Explore one context", lambda testbed, _references: explore_tab(testbed)),
    ("Mitigate (RW-Steering)", mitigate_tab),
]


st.title("Poisoned context (Rescorla-Wagner)")
about_box(
    "Contexts of *n* retrieved items in the Poisoned Context Testbed prompt format, with a share *p* of "
    "inappropriate items (the claim and its paraphrases, tagged with disreputable sources). For each share we score "
    "the reference answer against the inappropriate claim by log-probability and fit the Rescorla-Wagner model "
    "A(p) = b + (c − b)·V(pn) / (V(pn) + V((1−p)n)), V(k) = 1 − (1 − αβ)^k: a concave curve means a small share of "
    "inappropriate content already moves the answer a lot. Every curve is also fitted by a constant, a proportional "
    "line and a logistic in p (the model follows the majority of the context); the best by AICc is named in words.",
    "Context Engineering for Trustworthiness: Rescorla Wagner Steering Under Mixed and Inappropriate Contexts "
    "(EMNLP 2025); data: the Poisoned Context Testbed.",
    "forced choice by log-probability instead of the paper's LLM judge (default: calibrated, the answer's "
    "log-probability minus its log-probability after a content-free prompt, so answer length and the model's prior "
    "do not decide); the RW formulation, its baseline b and the competing models are our reading "
    "(METHODS.md §3); the fitted strength is the poisoned rate (share of items whose claim wins) unless you pick the "
    "mean choice probability; source tags are the organism's tag words; when n items do not fit the model's "
    "context, n is lowered and a notice says so.",
)

references = paper_header("poisoned")
testbed = read_testbed()
for tab, (_, draw) in zip(st.tabs([label for label, _ in TABS]), TABS, strict=True):
    with tab:
        draw(testbed, references)
