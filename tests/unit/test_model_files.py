"""The exact allow-list of model-file types (persistence.trusted_model_types): every model our training makes,
and the common scikit-learn estimators, load with it; callables that run code are refused by name.

A scikit-learn or skops upgrade that makes a fitted model hold a new internal type fails here, naming it:
add that exact name to persistence.trusted_model_types() after checking it is a harmless class."""

import builtins
import importlib
import operator
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor, make_column_selector
from sklearn.decomposition import PCA
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import AdaBoostClassifier, BaggingRegressor, ExtraTreesClassifier
from sklearn.feature_selection import SelectKBest
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.linear_model import ElasticNet, Lasso, PoissonRegressor, SGDClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MinMaxScaler,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
)
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeRegressor

from mlops_core.ml import algorithms, persistence, training
from mlops_core.demo.customers import make_customers
from mlops_core.errors import ValidationError

FEATURES = ["tenure_months", "monthly_charges", "contract", "payment_method", "senior", "support_calls"]
SMALL = {
    "random_forest": {"n_estimators": 3},
    "gradient_boosting": {"n_estimators": 3},
    "hist_gradient_boosting": {"max_iter": 3},
}
# Every algorithm on every task it supports; classification on a binary and on a 3-class target.
CASES = [
    (algo, task, target)
    for algo, spec in algorithms.ALGORITHMS.items()
    for task in spec.tasks
    for target in ({"classification": ("churned", "contract"), "regression": ("total_charges",)}[task])
]


@pytest.fixture(scope="module")
def frame():
    f = make_customers(200, seed=5)
    f.loc[f.index[:3], "monthly_charges"] = np.nan  # the imputer keeps its statistics in the model
    return f


@pytest.mark.parametrize("algorithm,task,target", CASES)
def test_each_of_our_algorithms_loads_with_the_exact_allow_list(frame, algorithm, task, target):
    features = [c for c in FEATURES if c != target]
    cfg = training.validate_config(
        frame,
        {
            "target": target,
            "task": task,
            "algorithm": algorithm,
            "features": features,
            "params": SMALL.get(algorithm, {}),
        },
    )
    pipe = training.train(frame, cfg).pipeline
    data = persistence.dump_model(pipe)
    assert persistence.refused_model_types(data) == []
    loaded = persistence.load_model_bytes(data)
    np.testing.assert_array_equal(loaded.predict(frame[features].head(25)), pipe.predict(frame[features].head(25)))


def _xy(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(1, 5, size=n), "c": rng.choice(["x", "y"], size=n)})
    return X, (X["a"] + rng.normal(scale=0.3, size=n) > 0).astype(int), X["b"] * 2 + rng.normal(size=n)


def _num(est):
    return Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", RobustScaler(), make_column_selector(dtype_include="number")),
                        ("cat", OrdinalEncoder(), ["c"]),
                    ]
                ),
            ),
            ("model", est),
        ]
    )


COMMON = {
    "knn": lambda: _num(KNeighborsClassifier(3)),
    "knn_ball": lambda: _num(KNeighborsRegressor(algorithm="ball_tree")),
    "svc": lambda: _num(SVC(probability=True)),
    "svr": lambda: _num(SVR()),
    "mlp": lambda: _num(MLPClassifier((5,), max_iter=50)),
    "extra_trees": lambda: _num(ExtraTreesClassifier(5)),
    "tree": lambda: _num(DecisionTreeRegressor(max_depth=3)),
    "lasso": lambda: _num(Lasso()),
    "elastic_net": lambda: _num(ElasticNet()),
    "nb": lambda: _num(GaussianNB()),
    "sgd": lambda: _num(SGDClassifier()),
    "adaboost": lambda: _num(AdaBoostClassifier(n_estimators=3)),
    "bagging": lambda: _num(BaggingRegressor(n_estimators=3)),
    "gp": lambda: _num(GaussianProcessRegressor()),
    "calibrated": lambda: _num(CalibratedClassifierCV(GaussianNB(), cv=3)),
    "poisson": lambda: _num(PoissonRegressor()),
    "pca_kbins_poly": lambda: _num(
        make_pipeline(PCA(2), KBinsDiscretizer(3), PolynomialFeatures(2), SelectKBest(k=3), DummyClassifier())
    ),
    "log_target": lambda: _num(
        TransformedTargetRegressor(
            make_pipeline(MinMaxScaler(), FunctionTransformer(np.sqrt), Lasso()), func=np.log1p, inverse_func=np.expm1
        )
    ),
}


@pytest.mark.parametrize("name", sorted(COMMON))
def test_common_scikit_learn_estimators_load_with_the_exact_allow_list(name):
    X, y_class, y_reg = _xy()
    model = COMMON[name]()
    regressor = name in ("knn_ball", "svr", "tree", "lasso", "elastic_net", "bagging", "gp", "log_target")
    model.fit(X, y_reg.abs() if name == "poisson" else (y_reg if regressor or name == "poisson" else y_class))
    data = sio.dumps(model)
    assert persistence.refused_model_types(data) == []
    np.testing.assert_allclose(persistence.load_model_bytes(data).predict(X.head(10)), model.predict(X.head(10)))


def test_the_allow_list_holds_exact_names_of_classes_and_the_named_functions_only():
    trusted = persistence.trusted_model_types()
    assert isinstance(trusted, frozenset)
    for name in sorted(trusted - persistence.TRUSTED_MODEL_FUNCTIONS):
        module, _, attr = name.rpartition(".")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        assert isinstance(obj, type), f"{name} is in the allow-list but is not a class"
    for name in (
        "builtins.eval",
        "builtins.exec",
        "builtins.min",
        "builtins.getattr",
        "builtins.open",
        "builtins.type",
        "builtins.object",
        "numpy.full_like",
        "numpy.ravel",
        "numpy.memmap",
        "numpy.load",
        "operator.itemgetter",
        "operator.attrgetter",
        "operator.methodcaller",
        "posix.system",
        "os.system",
        "subprocess.Popen",
        "importlib.import_module",
        "functools.partial",
        "sklearn.feature_extraction.text.CountVectorizer",
        "sklearn.metrics._dist_metrics.PyFuncDistance64",
    ):
        assert name not in trusted


REFUSED = {
    "builtins.eval": builtins.eval,
    "builtins.exec": builtins.exec,
    "builtins.min": builtins.min,
    "numpy.full_like": np.full_like,
    "numpy.ravel": np.ravel,
    "operator.itemgetter": operator.itemgetter(0),
    "operator.methodcaller": operator.methodcaller("strip"),
    "operator.attrgetter": operator.attrgetter("x"),
    "posix.system": os.system,
    "subprocess.call": subprocess.call,
    "importlib.import_module": importlib.import_module,
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_function_transformer_calling_code_is_refused_by_name(name):
    data = sio.dumps(FunctionTransformer(REFUSED[name]))
    with pytest.raises(ValidationError, match=f"does not load: .*{name}"):
        persistence.load_model_bytes(data)


@pytest.mark.parametrize("func", [np.log1p, np.expm1, np.log, np.exp, np.sqrt, np.square, np.abs])
def test_a_function_transformer_with_a_named_numeric_function_loads(func):
    model = FunctionTransformer(func, validate=True).fit(np.ones((3, 1)))
    assert persistence.refused_model_types(sio.dumps(model)) == []
    np.testing.assert_allclose(persistence.load_model_bytes(sio.dumps(model)).transform([[4.0]]), func([[4.0]]))


def test_a_bound_method_in_a_model_is_refused_by_name():
    clf = DummyClassifier().fit([[0], [1]], [0, 1])
    with pytest.raises(ValidationError, match="sklearn.dummy.DummyClassifier.predict"):
        persistence.load_model_bytes(sio.dumps(FunctionTransformer(clf.predict)))


def test_a_file_that_is_not_a_skops_model_is_refused_with_a_sentence():
    with pytest.raises(ValidationError, match="not a skops model file"):
        persistence.load_model_bytes(b"GIF89a not a zip")
