"""Run notes and tags (issue 15): the run's owner or a data scientist / admin edits them on a run in any
status, in one audited unit of work; other roles are refused and nothing changes; system tags stay put."""

import pytest

from mlops_core.errors import PermissionDenied, ValidationError
from mlops_core.models.experiments import Run
from mlops_core.models.users import User
from mlops_core.services import audit, experiments
from mlops_core.services.auth import Actor

from .experiments_world import make_world


def _finished_run(db, people):
    world = make_world(db, people)
    run = experiments.create_sdk_run(
        db, actor=people["data_scientist"], use_case_id=world.use_case_id, dataset_version_id=world.version_id
    )
    experiments.log_batch(db, actor=people["data_scientist"], run_id=run.id, tags={"ci.commit": "abc123"})
    experiments.end_sdk_run(db, actor=people["data_scientist"], run_id=run.id)
    return experiments.get_run(db, run.id)


@pytest.fixture
def finished_run(db, people):
    return _finished_run(db, people)


def _events(db, people, run_id):
    return audit.list_events(
        db, actor=people["admin"], action="run.annotate", entity_type="run", entity_id=str(run_id)
    ).events


def test_the_owner_edits_notes_and_tags_of_a_finished_run_and_the_change_is_audited(db, people, finished_run):
    ds = people["data_scientist"]
    got = experiments.annotate_run(
        db,
        actor=ds,
        run_id=finished_run.id,
        notes="Baseline before the new features.\nRecall is low on small customers.",
        tags={"stage": "baseline", "team": "retention"},
    )
    assert got.status == "finished"
    assert experiments.run_notes(got).startswith("Baseline before")
    # MLflow's own note tag: an MLflow client reads it as the run's description
    assert got.tags[experiments.NOTE_TAG] == experiments.run_notes(got)
    assert experiments.user_tags(got) == {"stage": "baseline", "team": "retention"}
    assert got.tags["ci.commit"] == "abc123"  # system tags untouched
    [event] = _events(db, people, finished_run.id)
    assert event.actor_username == ds.username and "notes" in event.summary and "stage" in event.summary
    assert event.before == {experiments.NOTE_TAG: None, "stage": None, "team": None}
    assert event.after["stage"] == "baseline"

    again = experiments.annotate_run(
        db, actor=ds, run_id=finished_run.id, notes="", tags={"stage": "champion-candidate"}, remove_tags=["team"]
    )
    assert experiments.run_notes(again) == "" and experiments.NOTE_TAG not in again.tags
    assert experiments.user_tags(again) == {"stage": "champion-candidate"}
    assert experiments.get_run(db, finished_run.id).tags == again.tags  # stored, not only returned
    assert len(_events(db, people, finished_run.id)) == 2
    # nothing changed: nothing written, nothing audited
    experiments.annotate_run(db, actor=ds, run_id=finished_run.id, tags={"stage": "champion-candidate"})
    assert len(_events(db, people, finished_run.id)) == 2


def test_other_roles_may_not_edit_someone_elses_run_and_nothing_changes(db, people, finished_run):
    for role in ("business", "data_engineer", "ops"):
        with pytest.raises(PermissionDenied, match="data_scientist"):
            experiments.annotate_run(
                db, actor=people[role], run_id=finished_run.id, notes="mine now", tags={"stage": "x"}
            )
    assert experiments.get_run(db, finished_run.id).tags == finished_run.tags
    assert _events(db, people, finished_run.id) == []


def test_another_data_scientist_and_an_admin_may_and_an_owner_keeps_the_right_after_a_role_change(
    db, people, finished_run
):
    with db.unit_of_work() as s:
        other = User(
            username="dora", display_name="Dora", email="dora@example.com", role="data_scientist", password_hash="x"
        )
        s.add(other)
        s.flush()
        dora = Actor(id=other.id, username="dora", role="data_scientist")
    experiments.annotate_run(db, actor=dora, run_id=finished_run.id, tags={"reviewed_by": "dora"})
    experiments.annotate_run(db, actor=people["admin"], run_id=finished_run.id, notes="checked")
    got = experiments.get_run(db, finished_run.id)
    assert got.tags["reviewed_by"] == "dora" and experiments.run_notes(got) == "checked"
    # a run owned by someone who is now in ops: the owner may still annotate it, other ops may not
    ops = people["ops"]
    with db.unit_of_work() as s:
        row = s.get(Run, finished_run.id)
        row.created_by = ops.username
        s.add(row)
    experiments.annotate_run(db, actor=ops, run_id=finished_run.id, notes="moved to ops, still mine")
    assert experiments.run_notes(experiments.get_run(db, finished_run.id)) == "moved to ops, still mine"
    assert experiments.may_annotate(ops, got.model_copy(update={"created_by": ops.username}))
    assert not experiments.may_annotate(people["business"], got)


def test_system_tags_and_oversized_values_are_refused_with_a_sentence(db, people, finished_run):
    ds = people["data_scientist"]
    for key in ("mlflow.runName", "mlops.dataset", "ci.commit", "executor"):
        with pytest.raises(ValidationError, match="set by the hub"):
            experiments.annotate_run(db, actor=ds, run_id=finished_run.id, tags={key: "x"})
        with pytest.raises(ValidationError, match="set by the hub"):
            experiments.annotate_run(db, actor=ds, run_id=finished_run.id, remove_tags=[key])
    with pytest.raises(ValidationError, match="1 to 250 characters"):
        experiments.annotate_run(db, actor=ds, run_id=finished_run.id, tags={" ": "x"})
    with pytest.raises(ValidationError, match="at most 5,000 characters"):
        experiments.annotate_run(db, actor=ds, run_id=finished_run.id, tags={"long": "x" * 5001})
    assert experiments.get_run(db, finished_run.id).tags == finished_run.tags
    assert _events(db, people, finished_run.id) == []


def test_the_hub_api_patches_notes_and_tags_with_the_same_rules(sqlite_db):
    """PATCH /api/v1/runs/{id}, in process; SQLite only: the route is a thin call of annotate_run, whose
    storage the tests above cover on both legs."""
    from fastapi.testclient import TestClient

    from mlops_core.serving.app import create_app
    from mlops_core.services import users
    from tests.conftest import make_people

    db = sqlite_db
    people = make_people(db)
    finished_run = _finished_run(db, people)

    def token(role):
        actor = people[role]
        return {"Authorization": f"Bearer {users.create_token(db, actor=actor, username=actor.username)}"}

    url = f"/api/v1/runs/{finished_run.id}"
    with TestClient(create_app(db.url, poll_seconds=60)) as client:
        ok = client.patch(url, json={"notes": "from CI", "tags": {"pr": 42}}, headers=token("data_scientist"))
        assert ok.status_code == 200, ok.text
        assert ok.json()["tags"][experiments.NOTE_TAG] == "from CI" and ok.json()["tags"]["pr"] == "42"
        refused = client.patch(url, json={"notes": "nope"}, headers=token("ops"))
        assert refused.status_code == 403 and "data_scientist" in refused.text
        bad = client.patch(url, json={"tags": {"mlflow.runName": "x"}}, headers=token("admin"))
        assert bad.status_code in (400, 422) and "set by the hub" in bad.text
        gone = client.patch(url, json={"notes": "", "remove_tags": ["pr"]}, headers=token("admin"))
        assert gone.status_code == 200 and experiments.NOTE_TAG not in gone.json()["tags"]
    got = experiments.get_run(db, finished_run.id)
    assert "pr" not in got.tags and got.tags["ci.commit"] == "abc123"
    events = _events(db, people, finished_run.id)
    assert sorted(e.actor_username for e in events) == sorted(
        [people["admin"].username, people["data_scientist"].username]
    )
