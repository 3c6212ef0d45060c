"""The deployment page's "Target & bundle" tab (issue 19): where the deployment runs, the bundle's manifest and
download, upload keys, the target's health (last upload, backlog, drops) and "download and run this"."""

from __future__ import annotations

import streamlit as st

from hub_ui import badges, session
from mlops_core.config import get_settings
from mlops_core.services import bundles, targets
from mlops_core.textsafety import plain_markdown as md_text


def _health(t) -> str:
    if t.target != "bundle":
        return "ok"
    if t.last_upload_at is None:
        return "unknown"
    return "ok" if (t.silent_hours or 0) < get_settings().target_silence_hours else "breach"


def render(db, actor, name: str) -> None:
    t = targets.get_target(db, name)
    m = st.columns(4)
    m[0].metric("Target", t.target)
    m[1].metric(
        "Version to run",
        "v" + t.model_version.rpartition(" v")[2] if t.model_version else "—",
        help=t.model_version or None,
    )
    m[2].metric("Last upload", session.fmt_time(t.last_upload_at) if t.last_upload_at else "never")
    m[3].metric("Backlog / dropped", f"{t.backlog:,} / {t.dropped:,}")
    st.markdown(
        f"Health: {badges.badge(_health(t))} · owner **{md_text(t.owner or '—')}** · {t.rows_received:,} rows received"
        + (f" · silent for {t.silent_hours:g} h" if t.silent_hours is not None else "")
    )
    if session.may("deployment.deploy"):
        with st.form("dep_target"):
            c = st.columns([1, 2, 1])
            target = c[0].selectbox(
                "Runs on", ["hub", "bundle"], index=0 if t.target == "hub" else 1, key="dep_target_pick"
            )
            owner = c[1].text_input(
                "Owner (told when the version to run changes)", value=t.owner, key="dep_target_owner"
            )
            save = c[2].form_submit_button("Save target")
        if save:
            with session.service_call("Target saved."):
                targets.set_target(db, actor=actor, deployment_name=name, target=target, owner=owner)
                st.rerun()

    st.subheader("Bundle")
    if t.bundle_manifest:
        st.caption("Last bundle built:")
        st.json(t.bundle_manifest, expanded=False)
    if t.model_version_id is None:
        st.caption("Nothing is deployed yet: deploy a version, then build its bundle.")
    elif session.may("deployment.deploy"):
        reason = ""
        if session.may("deployment.override_gates"):
            reason = st.text_input(
                "Override reason (only if the version failed its gates; audited)", key="dep_bundle_reason"
            )
        if st.button("Build the bundle", icon=":material/package_2:", key="dep_bundle_build"):
            with session.service_call():
                fname, data = bundles.bundle_zip(
                    db, actor=actor, deployment_name=name, override_reason=reason, hub_url=get_settings().public_url
                )
                st.session_state["dep_bundle_zip"] = (name, fname, data)
        built = st.session_state.get("dep_bundle_zip")
        if built and built[0] == name:
            st.download_button(
                "Download " + built[1], built[2], file_name=built[1], mime="application/zip", key="dep_bundle_dl"
            )

    st.subheader("Download and run this")
    example = {"deployment": name, "model_version": t.model_version or "MODEL vN", "hub_url": get_settings().public_url}
    st.code(bundles.run_instructions(example, f"{name}-bundle"), language="bash")
    st.caption(f"Or from the Hub's machine: python -m mlops_core deploy bundle --deployment {name} --out {name}-bundle")

    st.subheader("Upload keys")
    if session.may("apikey.manage"):
        with st.form("dep_upload_key"):
            kname = st.text_input("Where the bundle runs", key="dep_upload_key_name")
            make = st.form_submit_button("Create upload key", icon=":material/key:")
        if make:
            with session.service_call():
                _, secret = targets.create_upload_key(db, actor=actor, deployment_name=name, name=kname)
                st.success("Upload key created. Copy it now (MLOPS_UPLOAD_KEY): it is shown only once.")
                st.code(secret, language=None)
    keys = targets.list_upload_keys(db, deployment_name=name)
    if not keys:
        st.caption("No upload key yet.")
    for k in keys:
        c = st.columns([3, 3, 2])
        c[0].markdown(f"`{k.prefix}…` {md_text(k.name)}")
        c[1].caption(
            f"created by {k.created_by} on {session.fmt_time(k.created_at)}"
            + (f" · revoked by {k.revoked_by} on {session.fmt_time(k.revoked_at)}" if k.revoked_at else "")
        )
        if k.revoked_at is None and session.may("apikey.manage"):
            if c[2].button("Revoke", key=f"dep_upload_revoke_{k.id}"):
                with session.service_call("Upload key revoked: the next upload with it is refused."):
                    targets.revoke_upload_key(db, actor=actor, key_id=k.id)
                    st.rerun()
