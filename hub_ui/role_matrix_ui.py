"""The admin's "What each role may do" table (issue 15), generated from auth.PERMISSIONS."""

from __future__ import annotations

import streamlit as st

from mlops_core.services import role_matrix


def role_matrix_section() -> None:
    st.subheader("What each role may do")
    st.caption(
        "Generated from the permission rules the Hub enforces: 'yes' means the role may do it. "
        "Everyone may read; an admin may do everything."
    )
    st.dataframe(role_matrix.role_matrix_table(), hide_index=True, width="stretch")
