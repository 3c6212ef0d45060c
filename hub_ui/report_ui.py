"""The use case report's download button (issue 18): the HTML is built only when the button is clicked."""

from __future__ import annotations

import re

import streamlit as st

from mlops_core.services import report

from . import session


def download_button(use_case_id: int, title: str) -> None:
    db = session.db()
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or f"use-case-{use_case_id}"
    st.download_button(
        "Download report",
        data=lambda: report.build_report(db, use_case=use_case_id).html,
        file_name=f"{slug}-report.html",
        mime="text/html",
        icon=":material/description:",
        key=f"uc_report_{use_case_id}",
        help="One self-contained HTML file for the decision meeting (print it to PDF from the browser).",
        on_click="ignore",
    )
