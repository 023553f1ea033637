"""Optimizer spectra (Muon vs Adam) page (placeholder until the probe lands; shows no results)."""

import streamlit as st

st.title("Optimizer spectra (Muon vs Adam)")
st.info("This probe is not built yet. No results are shown until it is.")
