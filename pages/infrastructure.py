"""Infrastructure: worker processes (CPU and memory from their heartbeats), the scheduler, the job queue."""

from datetime import UTC, datetime

import streamlit as st

from hub_ui import badges, session
from mlops_core.services import infrastructure, processes

actor = session.require_actor()
db = session.db()
st.title("Infrastructure")
st.caption(
    "Each worker reports its CPU and memory (psutil) with its heartbeat; the scheduler holds a lease it "
    "renews while alive. A worker or scheduler that stops reporting raises an alert."
)

info = infrastructure.infrastructure_status(db)
now = datetime.now(UTC)
alive = [w for w in info.workers if w.status == "running"]
c1, c2, c3, c4 = st.columns(4)
c1.metric("Workers running", len(alive))
c2.metric(
    "Scheduler",
    "alive" if info.scheduler_alive else ("down" if info.scheduler_holder else "not started"),
    info.scheduler_holder or None,
    delta_color="off",
)
c3.metric("Jobs queued / running", f"{info.job_counts.get('queued', 0)} / {info.job_counts.get('running', 0)}")
c4.metric("Jobs failed", info.job_counts.get("failed", 0))

st.subheader("Processes")
st.caption(
    "Every UI, scoring and worker process: workers report through their heartbeat, the UI and the scoring "
    "service are found on this host (the scoring service's heartbeat is its answer to /healthz)."
)


def _ago(dt) -> str:
    if dt is None:
        return "—"
    s = max(0.0, (now - dt).total_seconds())
    return f"{s:.0f} s ago" if s < 120 else (f"{s / 60:.0f} min ago" if s < 7200 else f"{s / 3600:.1f} h ago")


def _uptime(dt) -> str:
    if dt is None:
        return "—"
    s = max(0.0, (now - dt).total_seconds())
    return f"{s / 60:.0f} min" if s < 7200 else (f"{s / 3600:.1f} h" if s < 172800 else f"{s / 86400:.1f} days")


procs = processes.list_processes(db)
host_mb = info.this_process.get("memory_total_mb") or max([p.rss_mb or 0 for p in procs] + [1.0])
st.dataframe(
    [
        {
            "process": p.name,
            "kind": p.kind,
            "status": badges.label(p.status),
            "host": p.host,
            "CPU %": p.cpu_percent,
            "memory (MB)": p.rss_mb,
            "up for": _uptime(p.started_at),
            "last heartbeat": _ago(p.heartbeat_at),
            "note": p.note,
        }
        for p in procs
    ],
    hide_index=True,
    width="stretch",
    column_config={
        "memory (MB)": st.column_config.ProgressColumn(
            "memory (MB)", format="%.0f MB", min_value=0, max_value=float(host_mb)
        ),
        "CPU %": st.column_config.NumberColumn("CPU %", format="%.1f"),
    },
    key="infra_procs",
)

st.subheader("Workers")
if not info.workers:
    st.caption("No worker has started yet (`python -m mlops_core worker`, or `up`).")
else:
    st.dataframe(
        [
            {
                "name": w.name,
                "host": w.hostname,
                "pid": w.pid,
                "status": w.status,
                "scheduler": "yes" if w.is_scheduler else "",
                "CPU %": round(w.cpu_percent, 1),
                "memory (MB)": round(w.rss_mb, 1),
                "heartbeat": f"{(now - w.heartbeat_at).total_seconds():.0f} s ago",
                "current job": w.current_job_id,
                "done": w.jobs_done,
                "failed": w.jobs_failed,
                "started": session.fmt_time(w.started_at),
            }
            for w in info.workers
        ],
        hide_index=True,
        width="stretch",
    )

st.subheader("This UI process")
p = info.this_process
st.caption(
    f"host CPU {p['cpu_percent']:.0f} % of {p['cpus']} CPUs · host memory {p['memory_percent']:.0f} % used · "
    f"this process {p['rss_mb']:.0f} MB"
)

st.subheader("Recent failed jobs")
if not info.failed_jobs:
    st.caption("None.")
else:
    st.dataframe(
        [
            {
                "job": j.id,
                "kind": j.kind,
                "finished": session.fmt_time(j.finished_at),
                "error": ((j.error or "").strip().splitlines() or [""])[-1][:200],
            }
            for j in info.failed_jobs
        ],
        hide_index=True,
        width="stretch",
    )
