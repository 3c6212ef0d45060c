"""The train job with MLOPS_DASK_SCHEDULER set (issue 16), the cluster faked at the `dask_exec` boundary (the
real cluster is in tests/integration/test_dask_search.py): the run records where its search ran and the
seconds per candidate; a scheduler lost mid-search fails the run with its message and stores no model."""

from mlops_core.ml import dask_exec
from mlops_core.services import experiments

from .experiments_world import FAST, make_world, run_jobs

ADDRESS = "tcp://dask-sched.test:8786"


def _start(db, people, world):
    return experiments.start_runs(
        db,
        actor=people["data_scientist"],
        use_case_id=world.use_case_id,
        dataset_version_id=world.version_id,
        config={"target": "churned", **FAST},
        algorithms=["logistic_regression"],
        params_by_algorithm={"logistic_regression": {"C": [0.1, 1.0, 10.0]}},
    )


def test_a_dask_run_records_where_it_ran_and_a_lost_scheduler_fails_it_without_a_model(db, people, monkeypatch):
    world = make_world(db, people)
    settings = experiments.get_settings().model_copy(update={"dask_scheduler": ADDRESS})
    monkeypatch.setattr(experiments, "get_settings", lambda: settings)
    seen = {}

    def fake_cluster(address, fn, cands, data, *, on_done, check_cancelled, client=None):
        seen["address"] = address
        results = []
        for i, cand in enumerate(cands):  # the same task function the Dask workers run
            check_cancelled()
            results.append(fn(data, cand))
            on_done(i + 1, len(cands))
        return results, dask_exec.ClusterRun(scheduler=address, n_workers=2, workers_lost=1)

    monkeypatch.setattr(dask_exec, "map_candidates", fake_cluster)
    [run] = _start(db, people, world)
    assert run_jobs(db) == ["finished"]
    got = experiments.get_run(db, run.id)
    assert got.status == "finished", got.error
    assert seen["address"] == ADDRESS
    tags = got.tags
    assert tags["executor"] == "dask" and tags["dask_scheduler"] == ADDRESS
    assert tags["dask_workers"] == 2 and tags["dask_workers_lost"] == 1
    assert len(tags["search_candidate_seconds"]) == 3 and all(s > 0 for s in tags["search_candidate_seconds"])
    searched = experiments.plot_data(db, run.id).search_results  # the run page's search table
    assert [r.seconds for r in searched] == tags["search_candidate_seconds"]

    def lost(address, *a, **k):
        raise dask_exec.DaskUnavailable(f"lost the Dask scheduler at {address} mid-search (task candidate-1 cancelled)")

    monkeypatch.setattr(dask_exec, "map_candidates", lost)
    [run2] = _start(db, people, world)
    assert run_jobs(db) == ["failed"]
    got2 = experiments.get_run(db, run2.id)
    assert got2.status == "failed" and f"lost the Dask scheduler at {ADDRESS}" in got2.error
    assert got2.model_artifact_key is None and experiments.list_artifacts(db, run2.id) == []
