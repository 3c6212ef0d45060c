"""The use case report attached to a sign-off (issue 18): the approver downloads exactly the stored document
whose hash the evidence holds; the request form's "attach the use case report" option."""

from __future__ import annotations

import streamlit as st

from mlops_core.errors import DomainError
from mlops_core.models.collab import SignoffPublic
from mlops_core.services import signoff_report
from mlops_core.textsafety import plain_markdown


def attached_report(so: SignoffPublic, *, key: str) -> None:
    """A download of the report the sign-off was asked on (nothing when none was attached)."""
    entry = signoff_report.attached(so)
    if entry is None:
        return
    try:
        data = signoff_report.report_bytes(so)
    except DomainError as exc:
        st.error(f"Attached report: {plain_markdown(str(exc))}", icon=":material/gpp_bad:")
        return
    st.download_button(
        "Attached use case report",
        data=data,
        file_name=f"signoff-{so.id}-report-{str(entry['sha256'])[:12]}.html",
        mime="text/html",
        icon=":material/description:",
        key=f"{key}_so_report_{so.id}",
        help=f"The exact report this sign-off was asked on (sha256 {entry['sha256']}, part of the evidence hash).",
        on_click="ignore",
    )


def attach_option(*, key: str) -> bool:
    """Inside the request form: attach the use case report?"""
    return st.checkbox(
        "Attach the use case report",
        key=key,
        help="The report is stored with the request and its hash joins the evidence, so the approver "
        "signs the document they read.",
    )
