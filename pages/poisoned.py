"""Poisoned context (Rescorla-Wagner) page (placeholder until the probe lands; shows no results)."""

import streamlit as st

st.title("Poisoned context (Rescorla-Wagner)")
st.info("This probe is not built yet. No results are shown until it is.")
