"""The opening of a page about one thing (a dataset, a use case, a deployment) when there is none yet."""

from typing import NoReturn

import streamlit as st


def nothing_yet(message: str, *, page: str, label: str, icon: str, title: str | None = None) -> NoReturn:
    """Say there is nothing to show yet, link to the page where one is made, and stop the page."""
    if title:
        st.title(title)
    st.info(message)
    st.page_link(page, label=label, icon=icon)
    st.stop()
