"""The tracking SDK as a notebook uses it: MLOPS_TOKEN, register_dataset, start_run, register_model, get_run."""
import pytest
from sklearn.linear_model import LogisticRegression

from mlops_core import tracking
from mlops_core.errors import AuthenticationFailed, NotFound, ValidationError
from mlops_core.services import experiments, users
from mlops_core.services.auth import Actor

from .experiments_world import make_world


@pytest.fixture
def sara_token(db, people, monkeypatch):
    token = users.create_token(db, actor=Actor.system(), username="sara")
    monkeypatch.setenv("MLOPS_TOKEN", token)
    return token


def test_a_notebook_logs_a_run_that_shows_params_metrics_and_can_be_registered(db, people, sara_token):
    world = make_world(db, people)
    with tracking.start_run(use_case=world.use_case_id, dataset="customers@v1", name="notebook lr") as run:
        run.log_params({"C": 0.5, "solver": "lbfgs"})
        for step in range(5):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        X = world.frame[["tenure_months", "monthly_charges"]]
        model = LogisticRegression().fit(X, world.frame["churned"])
        run.log_metrics({"roc_auc": 0.81, "recall": 0.7})
        run.set_tags({"team": "retention"})
        run.log_model(model, input_example=X)
    got = tracking.get_run(run.id)
    assert got.status == "finished"
    assert got.params == {"C": 0.5, "solver": "lbfgs"}
    assert got.metrics["roc_auc"] == pytest.approx(0.81)
    assert got.metrics["loss"] == pytest.approx(0.2)  # the latest step
    assert got.tags == {"team": "retention"}
    assert len(experiments.metric_history(db, run.id, "loss")["loss"]) == 5
    assert tracking.register_model(run.id, "churn-notebook") == 1
    assert tracking.register_model(run.id, "churn-notebook") == 2


def test_metrics_are_written_in_batches_not_one_transaction_per_value(db, people, sara_token):
    make_world(db, people)
    from mlops_core.services import audit

    with tracking.start_run(dataset="customers@v1", batch_size=100) as run:
        for step in range(30):
            run.log_metrics({f"m{i}": float(i * step) for i in range(10)}, step=step)  # 300 values
    log_events = audit.list_events(db, actor=people["admin"], entity_type="run", entity_id=str(run.id),
                                   action="run.log").total
    assert log_events == 3  # 300 values / 100 per batch
    assert tracking.get_run(run.id).metrics["m9"] == 9.0 * 29


def test_an_exception_inside_the_block_marks_the_run_failed_with_the_traceback(db, people, sara_token):
    make_world(db, people)
    with pytest.raises(ZeroDivisionError):
        with tracking.start_run(dataset="customers@v1") as run:
            run.log_metrics({"partial": 1.0})
            1 / 0
    got = tracking.get_run(run.id)
    assert got.status == "failed"
    assert "ZeroDivisionError" in got.error and "Traceback" in got.error
    assert got.metrics["partial"] == 1.0  # what was logged before the failure is kept


def test_without_a_token_the_sdk_says_how_to_get_one(db, people, monkeypatch):
    monkeypatch.delenv("MLOPS_TOKEN", raising=False)
    with pytest.raises(AuthenticationFailed, match="MLOPS_TOKEN"):
        tracking.start_run(dataset="customers@v1")


def test_a_bad_token_is_refused(db, people, monkeypatch):
    monkeypatch.setenv("MLOPS_TOKEN", "mlh_not-a-real-token")
    with pytest.raises(AuthenticationFailed, match="unknown or revoked"):
        tracking.get_run(1)


def test_a_bad_dataset_reference_names_the_fix(db, people, sara_token):
    make_world(db, people)
    with pytest.raises(ValidationError, match="name@vN"):
        tracking.start_run(dataset="customers v1")
    with pytest.raises(NotFound, match="no version v9"):
        tracking.start_run(dataset="customers@v9")
    with pytest.raises(NotFound, match="no dataset named"):
        tracking.start_run(dataset="nope@v1")


def test_register_dataset_returns_a_versioned_reference(db, people, monkeypatch):
    world = make_world(db, people)
    token = users.create_token(db, actor=Actor.system(), username="dan")
    monkeypatch.setenv("MLOPS_TOKEN", token)
    ref = tracking.register_dataset("customers", world.frame.head(100), use_case=world.use_case_id)
    assert ref == "customers@v2"
