"""Probes: pure computation on a loaded model (no Streamlit, no storage), one module per probe."""
