"""MLOps Hub core: the UI-free service layer shared by the UI, the worker and the scoring service.

This package never imports streamlit.
"""

__version__ = "0.1.0"
