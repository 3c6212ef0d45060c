"""A use case's lineage as a graph (issue 18): use case -> dataset versions -> runs -> model versions ->
deployments -> alerts -> retraining runs -> the next version. By default only the lineage of what is served
now (and what it led to); `full=True` shows everything, with the runs of one dataset version that produced
no model clustered into one node so 200 runs stay readable. A handful of queries, no per-node query.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import col, select

from ..db import Database
from ..models.datasets import Dataset, DatasetVersion
from ..models.deployments import Deployment
from ..models.experiments import ModelVersion, RegisteredModel, Run
from ..models.monitoring import Alert
from ..models.usecases import UseCase

LAYERS = ("use_case", "dataset_version", "run", "model_version", "deployment", "alert")


@dataclass
class Node:
    key: str  # "run:12", "runs:dv3" (a cluster)
    kind: str  # one of LAYERS (a cluster is kind "run")
    entity_id: str | None  # what the node's page opens with ?id= (None: a cluster)
    label: str
    status: str = ""
    detail: str = ""
    served: bool = False
    size: int = 1


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    served_only: bool = True

    def node(self, key: str) -> Node | None:
        return next((n for n in self.nodes if n.key == key), None)


def use_case_lineage(db: Database, use_case_id: int, *, full: bool = False, cluster_over: int = 3) -> Graph:
    with db.read() as s:
        uc = s.get(UseCase, use_case_id)
        if uc is None:
            return Graph()
        deps = s.exec(select(Deployment).where(Deployment.use_case_id == use_case_id)).all()
        mvs = s.exec(
            select(ModelVersion, RegisteredModel.name)
            .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
            .where(ModelVersion.use_case_id == use_case_id)
        ).all()
        runs = s.exec(
            select(
                Run.id, Run.name, Run.status, Run.dataset_version_id, Run.triggered_by_alert_id, Run.algorithm
            ).where(Run.use_case_id == use_case_id)
        ).all()
        dvs = s.exec(
            select(DatasetVersion.id, Dataset.name, DatasetVersion.version, DatasetVersion.status)
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .where(Dataset.use_case_id == use_case_id)
        ).all()
        dep_ids = [d.id for d in deps]
        alerts = (
            s.exec(
                select(Alert.id, Alert.title, Alert.state, Alert.severity, Alert.deployment_id).where(
                    col(Alert.deployment_id).in_(dep_ids)
                )
            ).all()
            if dep_ids
            else []
        )
        deps = [(d.id, d.name, d.environment, d.model_version_id) for d in deps]
        mvs = [(m.id, name, m.version, m.run_id, m.dataset_version_id) for m, name in mvs]
        title = uc.title

    g = Graph(served_only=not full)
    served_mv = {mv for _, _, _, mv in deps if mv}
    mv_by_run: dict[int, list] = {}
    for m in mvs:
        mv_by_run.setdefault(m[3], []).append(m)
    run_by_id = {r[0]: r for r in runs}
    alert_ids_by_dep: dict[int, list] = {}
    for a in alerts:
        alert_ids_by_dep.setdefault(a[4], []).append(a)
    retrain_by_alert: dict[int, list] = {}
    for r in runs:
        if r[4]:
            retrain_by_alert.setdefault(r[4], []).append(r)

    # which objects to show
    if full:
        keep_mv = {m[0] for m in mvs}
        keep_runs = {r[0] for r in runs}
        keep_dv = {d[0] for d in dvs}
        keep_dep = {d[0] for d in deps}
        keep_alert = {a[0] for a in alerts}
    else:
        keep_mv = set(served_mv)
        keep_dep = {d[0] for d in deps if d[3] in served_mv}
        keep_alert = {a[0] for a in alerts if a[4] in keep_dep}
        keep_runs = {m[3] for m in mvs if m[0] in keep_mv}
        for a in keep_alert:  # retraining runs an alert led to, and the versions they produced
            for r in retrain_by_alert.get(a, []):
                keep_runs.add(r[0])
                keep_mv.update(m[0] for m in mv_by_run.get(r[0], []))
        keep_dv = {run_by_id[r][3] for r in keep_runs if r in run_by_id and run_by_id[r][3]}
        keep_dv |= {m[4] for m in mvs if m[0] in keep_mv and m[4]}

    g.nodes.append(Node("use_case:%d" % use_case_id, "use_case", str(use_case_id), title, served=True))
    for dv_id, dname, ver, status in dvs:
        if dv_id in keep_dv:
            g.nodes.append(Node(f"dataset_version:{dv_id}", "dataset_version", None, f"{dname}@v{ver}", status=status))
            g.edges.append((f"use_case:{use_case_id}", f"dataset_version:{dv_id}"))
    # runs: those that produced a model or came from an alert are nodes; the rest cluster per dataset version
    plain: dict[int | None, list] = {}
    for r in runs:
        if r[0] not in keep_runs:
            continue
        if full and r[0] not in mv_by_run and not r[4]:
            plain.setdefault(r[3], []).append(r)
            continue
        g.nodes.append(Node(f"run:{r[0]}", "run", str(r[0]), r[1] or f"run {r[0]}", status=r[2], detail=r[5]))
        if r[3] in keep_dv:
            g.edges.append((f"dataset_version:{r[3]}", f"run:{r[0]}"))
        if r[4] and r[4] in keep_alert:
            g.edges.append((f"alert:{r[4]}", f"run:{r[0]}"))
    for dv_id, group in plain.items():
        if len(group) <= cluster_over:
            for r in group:
                g.nodes.append(Node(f"run:{r[0]}", "run", str(r[0]), r[1] or f"run {r[0]}", status=r[2], detail=r[5]))
                if dv_id in keep_dv:
                    g.edges.append((f"dataset_version:{dv_id}", f"run:{r[0]}"))
        else:
            counts: dict[str, int] = {}
            for r in group:
                counts[r[2]] = counts.get(r[2], 0) + 1
            key = f"runs:{dv_id}"
            detail = ", ".join(f"{n} {st}" for st, n in sorted(counts.items()))
            g.nodes.append(Node(key, "run", None, f"{len(group)} other runs", detail=detail, size=len(group)))
            if dv_id in keep_dv:
                g.edges.append((f"dataset_version:{dv_id}", key))
    for mv_id, name, ver, run_id, _dv in mvs:
        if mv_id in keep_mv:
            g.nodes.append(
                Node(f"model_version:{mv_id}", "model_version", str(mv_id), f"{name} v{ver}", served=mv_id in served_mv)
            )
            if run_id in keep_runs:
                g.edges.append((f"run:{run_id}", f"model_version:{mv_id}"))
    for dep_id, name, env, mv_id in deps:
        if dep_id in keep_dep:
            g.nodes.append(
                Node(f"deployment:{dep_id}", "deployment", str(dep_id), name, status=env, served=bool(mv_id))
            )
            if mv_id in keep_mv:
                g.edges.append((f"model_version:{mv_id}", f"deployment:{dep_id}"))
    for a_id, atitle, state, sev, dep_id in alerts:
        if a_id in keep_alert:
            g.nodes.append(Node(f"alert:{a_id}", "alert", str(a_id), atitle[:60], status=state, detail=sev))
            g.edges.append((f"deployment:{dep_id}", f"alert:{a_id}"))
    keys = {n.key for n in g.nodes}
    g.edges = [e for e in dict.fromkeys(g.edges) if e[0] in keys and e[1] in keys]
    # dataset versions link to the dataset page: resolve their dataset id
    if any(n.kind == "dataset_version" for n in g.nodes):
        with db.read() as s:
            ids = [int(n.key.split(":")[1]) for n in g.nodes if n.kind == "dataset_version"]
            owner = dict(
                s.exec(
                    select(DatasetVersion.id, DatasetVersion.dataset_id).where(col(DatasetVersion.id).in_(ids))
                ).all()
            )
        for n in g.nodes:
            if n.kind == "dataset_version":
                n.entity_id = str(owner.get(int(n.key.split(":")[1]), ""))
    return g
