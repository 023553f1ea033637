"""Poisoned-context page, explore tab: one context, typed or uploaded, scored with leave-one-out attribution."""

from __future__ import annotations

import streamlit as st

from pages.common import cached_run, chat_template_select, export_buttons, run_caption, show_error
from pages.poisoned_tabs.inputs import scoring_select, show_coverage_warnings
from probes.figures.poisoned import attribution_figure
from probes.poisoned import EXPLORE_NAME, ExploreConfig, ExploreInput, Testbed, TestbedError
from probes.poisoned.contexts import POSITIONS
from probes.poisoned.testbed import decode_upload
from probes.wiring import result_of

CONTEXT_UPLOAD_LABEL = "Upload a context (.txt, one segment per line, at most 1 MB)"
MAX_CONTEXT_BYTES = 2**20


def explore_defaults(testbed: Testbed | None) -> dict[str, str]:
    if testbed is None:
        return {"question": "", "context": "", "bad": "", "answers": ""}
    item = testbed.items[0]
    return {
        "question": item.question,
        "context": "\n".join(item.appropriate),
        "bad": "\n".join(item.inappropriate),
        "answers": f"{item.reference}\n{item.claim}",
    }


def lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def prefill_from(testbed: Testbed | None) -> None:
    """Fill the explore fields with the testbed's first item whenever the testbed changes."""
    digest = testbed.digest if testbed is not None else None
    if st.session_state.get("poisoned-x-prefilled") == digest:
        return
    st.session_state["poisoned-x-prefilled"] = digest
    for name, value in explore_defaults(testbed).items():
        st.session_state[f"poisoned-x-{name}"] = value


def explore_inputs(testbed: Testbed | None) -> tuple[ExploreInput, ExploreConfig, bool] | None:
    prefill_from(testbed)
    question = st.text_input("Question", key="poisoned-x-question")
    upload = st.file_uploader(
        CONTEXT_UPLOAD_LABEL, type=["txt"], key="poisoned-x-upload", max_upload_size=MAX_CONTEXT_BYTES // 2**20
    )
    context = st.text_area("Context segments (one per line)", key="poisoned-x-context")
    if upload is not None:
        try:
            context = decode_upload(upload.getvalue(), upload.name, MAX_CONTEXT_BYTES)
        except TestbedError as error:
            show_error(error)
            return None
    bad = st.text_area("Inappropriate segments to mix in (one per line)", key="poisoned-x-bad")
    answers = st.text_area(
        "Candidate answers (one per line: reference first, then the claim)", key="poisoned-x-answers"
    )
    left, middle, right = st.columns(3)
    n_bad = left.slider("Inappropriate segments mixed in", 0, 20, 2, key="poisoned-x-n-bad")
    position = middle.selectbox("Where", POSITIONS, key="poisoned-x-position")
    generate = right.checkbox("Generate an answer", True, key="poisoned-x-generate")
    scoring = scoring_select(right, "poisoned-x-scoring", ExploreConfig.scoring)
    chat_template = chat_template_select(middle, "poisoned-x-chat-template")
    submitted = st.button("Score this context", key="poisoned-x-run")
    data = ExploreInput(question.strip(), lines(context), lines(bad), lines(answers))
    cfg = ExploreConfig(
        n_inappropriate=n_bad, position=position, generate=generate, scoring=scoring, chat_template=chat_template
    )
    return data, cfg, submitted


def explore_tab(testbed: Testbed | None) -> None:
    chosen = explore_inputs(testbed)
    if chosen is None:
        return
    data, cfg, submitted = chosen
    if submitted:
        st.session_state["poisoned-x-requested"] = True
    if not st.session_state.get("poisoned-x-requested"):
        return
    stored = cached_run(EXPLORE_NAME, cfg, data, label="Scoring the context")
    if stored is None:
        return
    run_caption(stored)
    result = result_of(stored)
    show_coverage_warnings(result.warnings)
    winner = result.winner
    left, right = st.columns(2)
    left.metric(f"Log-odds claim vs reference ({result.scoring})", f"{result.logodds:+.3f} nats")
    right.metric("Forced choice", str(winner.role), help=str(winner.candidate))
    st.markdown(f"**Forced-choice answer:** {winner.candidate}")
    if result.generated:
        st.markdown(f"**Generated answer:** {result.generated}")
    st.dataframe(result.answers, hide_index=True, width="stretch")
    st.plotly_chart(attribution_figure(result.segments), width="stretch", key="poisoned-attribution")
    with st.expander(f"Prompt as the model read it ({result.prompt_format})"):
        st.text(result.prompt)
    export_buttons(stored, key_prefix="poisoned-x")
