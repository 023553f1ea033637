"""Associative steering (FlexAC) page (placeholder until the probe lands; shows no results)."""

import streamlit as st

st.title("Associative steering (FlexAC)")
st.info("This probe is not built yet. No results are shown until it is.")
