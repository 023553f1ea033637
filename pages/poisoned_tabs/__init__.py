"""The poisoned-context page's parts (pages/poisoned.py): the testbed widgets and one module per tab.

A sub-package rather than pages/poisoned_*.py files: every top-level file in pages/ is treated as a page (by
Streamlit's legacy multipage scan before app.py's `st.navigation` runs, and by tests/pages/test_app.py), and these
modules are not pages.
"""
