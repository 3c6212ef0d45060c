"""Infrastructure: worker processes (CPU and memory from their heartbeats), the scheduler, the job queue; and
whether to scale (issue 16): queue wait, worker utilisation, scoring replica load, the Dask cluster, advice."""

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

scale = infrastructure.scaling_status(db)


def _secs(x) -> str:
    if x is None:
        return "—"
    return (
        f"{x:.1f} s"
        if x < 10
        else (f"{x:.0f} s" if x < 120 else (f"{x / 60:.0f} min" if x < 7200 else f"{x / 3600:.1f} h"))
    )


st.subheader("Scaling")
for item in scale.advice:
    show = {"add": st.warning, "remove": st.info, "warn": st.error}.get(item.level, st.success)
    # Material icons, not emoji: a machine without an emoji font drew empty boxes
    show(
        item.text,
        icon={"add": ":material/trending_up:", "remove": ":material/trending_down:", "warn": ":material/warning:"}.get(
            item.level, ":material/check_circle:"
        ),
    )
t = scale.thresholds
with st.expander("Scaling rules"):
    st.markdown(
        f"- **Add a worker** when the queue wait p95 is over {t.queue_wait_p95_s:g} s, or workers are busy over "
        f"{t.worker_busy_ratio:.0%} with jobs waiting.\n"
        f"- **Add a scoring replica** when its p95 is over {t.replica_p95_ms:g} ms at {t.replica_cpu_percent:g}% "
        f"CPU, or over {t.replica_in_flight:g} requests are in flight per replica.\n"
        "- The thresholds are settings `MLOPS_SCALE_*`.\n"
        "- The same figures are Prometheus metrics on the HTTP service's `/metrics` (`mlops_jobs_waiting`, "
        "`mlops_job_queue_wait_seconds`, `mlops_worker_busy_ratio`, `mlops_replica_*`, `mlops_dask_*`), for an "
        "autoscaler: docs/autoscaling.md."
    )

st.markdown("**Job queue**")
q = scale.queue
q1, q2, q3, q4 = st.columns(4)
q1.metric("Waiting now", q.waiting, help="Queued jobs whose time has come (not those in a retry back-off).")
q2.metric("Oldest waiting", _secs(q.oldest_wait_s))
q3.metric(
    "Wait p50 / p95, last hour",
    f"{_secs(q.p50_1h)} / {_secs(q.p95_1h)}",
    help=f"Time from enqueued (or due) to started, of the {q.n_1h} jobs started in the last hour.",
)
q4.metric(
    "Wait p50 / p95, 24 h",
    f"{_secs(q.p50_24h)} / {_secs(q.p95_24h)}",
    help=f"Of the {q.n_24h} jobs started in the last 24 hours.",
)

st.markdown("**Worker utilisation, last hour**")
if not scale.workers:
    st.caption("No worker was alive in the last hour.")
else:
    st.dataframe(
        [
            {
                "worker": w.name,
                "status": w.status,
                "busy": w.busy_ratio,
                "busy time": _secs(w.busy_s),
                "alive in the hour": _secs(w.alive_s),
                "jobs": w.jobs,
                "concurrency": w.concurrency,
                "CPU %": round(w.cpu_percent, 1),
            }
            for w in scale.workers
        ],
        hide_index=True,
        width="stretch",
        column_config={
            "busy": st.column_config.ProgressColumn("busy", format="percent", min_value=0.0, max_value=1.0),
        },
        key="infra_utilisation",
    )
    st.caption("Busy = time running jobs ÷ (concurrency × time alive in the last hour), from job start/finish times.")

st.markdown("**Scoring replicas**")
if not scale.replicas:
    st.caption(
        "No HTTP service process has reported in the last hour (`python -m mlops_core serve`; each replica "
        "writes its load every few seconds)."
    )
else:
    st.dataframe(
        [
            {
                "replica": r.name,
                "status": badges.label(r.status),
                "requests/s": round(r.requests_per_s, 2),
                "in flight": r.in_flight,
                "p95 latency (ms)": "—" if r.p95_ms is None else f"{r.p95_ms:,.1f}",
                "CPU %": round(r.cpu_percent, 1),
                "memory (MB)": round(r.rss_mb, 1),
            }
            for r in scale.replicas
        ],
        hide_index=True,
        width="stretch",
        key="infra_replicas",
    )
    st.caption("Requests/s and p95 latency (predict) over each replica's last heartbeat interval (5 s).")

st.markdown("**Dask cluster**")
d = scale.dask
if d is None:
    st.caption("No Dask cluster configured (MLOPS_DASK_SCHEDULER unset): searches run inside the workers.")
elif not d.reachable:
    st.error(f"unreachable: {d.address}" + (f" — {d.error}" if d.error else ""))
else:
    d1, d2, d3, d4 = st.columns(4)
    d1.metric("Dask workers", d.n_workers, d.address, delta_color="off")
    d2.metric("Threads", d.threads)
    d3.metric("Memory used", f"{d.memory_bytes / 2**30:.1f} GiB")
    d4.metric("Tasks processing", d.processing)
    if d.workers:
        st.dataframe(
            [
                {
                    "worker": w["address"],
                    "threads": w["threads"],
                    "memory (MiB)": round(w["memory_bytes"] / 2**20),
                    "memory limit (MiB)": round(w["memory_limit_bytes"] / 2**20),
                    "tasks processing": w["processing"],
                }
                for w in d.workers
            ],
            hide_index=True,
            width="stretch",
            key="infra_dask",
        )

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
                "current job": f"#{w.current_job_id}" if w.current_job_id else "idle",
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
    st.caption("No job has failed recently.")
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
