"""Model files: skops persistence behind an exact allow-list of the types a stored model may contain.

A model file is data written by whoever logged it (an SDK user may log any object), and skops rebuilds
whatever types the file names: a class is called or restored from state, a function is handed to the
estimator that calls it (FunctionTransformer(func=builtins.eval) runs code at predict time). So a file
loads only when EVERY type it names, as skops names it, is in `trusted_model_types()`: exact fully
qualified names, never module prefixes ("numpy." would admit numpy.full_like and friends). Types are
read from the file's schema ourselves (not only skops' "untrusted" list, which trusts defaults of its
own) and refused by name before skops imports or builds anything.

skops, scipy and scikit-learn are imported inside the functions that need them: the registry and the
experiments service import this module, and a page or CLI `--help` should not pay for them.
"""

from __future__ import annotations

import io
import json
import zipfile
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import ValidationError

# Callables a model may reference (FunctionTransformer func/inverse_func, TransformedTargetRegressor
# func/inverse_func, a univariate selector's score_func). Each is a pure numeric function: it reads the
# array the pipeline hands it and returns numbers of (at most) the same size; no I/O, no code
# evaluation, no attribute lookup by name, no way to grow memory beyond the input.
TRUSTED_MODEL_FUNCTIONS = frozenset(
    {
        # numpy ufuncs (element-wise arithmetic; the usual log/power transforms of skewed features or targets).
        # On an object array a ufunc calls the element's method of the same name; scoring inputs are JSON
        # strings and numbers, which have none, so that is a TypeError, not a call into anything.
        "numpy.log1p",
        "numpy.expm1",  # log(1 + x) and its inverse: skewed counts and amounts
        "numpy.log",
        "numpy.exp",  # log transform and its inverse
        "numpy.sqrt",
        "numpy.square",  # square-root transform and its inverse
        "numpy.absolute",  # |x| (numpy.abs is this ufunc)
        # Defaults of SelectKBest / SelectPercentile / GenericUnivariateSelect and the usual alternatives:
        # statistics over the (already numeric) training matrix, used at fit time only.
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.feature_selection._univariate_selection.chi2",
    }
)

# Estimators left out although scikit-learn lists them: the text vectorizers take `input="filename"` or
# `"file"`, and then transform() OPENS the paths it is given (on a scoring service: paths sent by callers).
_UNTRUSTED_ESTIMATORS = frozenset(
    {
        "sklearn.feature_extraction.text.CountVectorizer",
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.feature_extraction.text.HashingVectorizer",
    }
)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _classes_in(module, base: type) -> set[str]:
    """Exact names of the classes defined in `module` that subclass `base` (classes only, never functions)."""
    return {
        _qualified(obj)
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, base) and obj.__module__ == module.__name__
    }


@lru_cache(maxsize=1)
def trusted_model_types() -> frozenset[str]:
    """Every type name a stored model may contain (classes and the few functions above), exactly as skops
    writes them. Built once per process: scikit-learn's estimator classes (all_estimators(), which
    importing skops.io runs anyway) plus the internal types that fitted estimators keep, found by dumping
    real models (tests/unit/test_model_files.py dumps each of our algorithms and common estimators, so a
    scikit-learn upgrade that adds an internal type fails there, loudly)."""
    # scipy is heavy: loaded only when this runs
    import scipy.sparse as sp
    import sklearn._loss._loss as cy_loss
    import sklearn._loss.link as link
    import sklearn._loss.loss as loss
    import sklearn.gaussian_process.kernels as kernels
    import sklearn.linear_model._sgd_fast as sgd_fast
    import sklearn.metrics._dist_metrics as dist_metrics
    from sklearn.utils import all_estimators

    names: set[str] = {_qualified(cls) for _, cls in all_estimators()} - _UNTRUSTED_ESTIMATORS
    # Internals of fitted estimators (trees, boosting losses and links, binning, neighbours' search
    # trees and metrics, optimisers, calibrators, GP kernels).
    names |= {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.compose._column_transformer.make_column_selector",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    }
    # (every class of the compiled loss module: CyHalfMultinomialLoss does not derive from CyLossFunction)
    names |= _classes_in(loss, loss.BaseLoss) | _classes_in(cy_loss, object)
    names |= _classes_in(link, link.BaseLink) | {_qualified(link.Interval)}
    names |= _classes_in(sgd_fast, object) | _classes_in(kernels, kernels.Kernel)
    # Distance metrics, except the one that calls a Python function given to it.
    names |= {n for n in _classes_in(dist_metrics, dist_metrics.DistanceMetric) if ".PyFuncDistance" not in n}
    # numpy: arrays, dtypes and scalar types (skops names scalars "numpy.float64"), random states.
    names |= {
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.ma.MaskedArray",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
    }
    names |= {f"numpy.{t.__name__}" for t in set(np.sctypeDict.values())}
    names |= {f"numpy.random.{n}" for n in ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")}
    # scipy sparse matrices/arrays (skops reads them with load_npz, which never unpickles).
    names |= {
        _qualified(obj)
        for obj in vars(sp).values()
        if isinstance(obj, type) and issubclass(obj, (sp.spmatrix, sp.sparray))
    }
    # Python containers and scalars that hold the estimators' parameters.
    names |= {
        f"builtins.{t.__name__}"
        for t in (dict, list, tuple, set, frozenset, slice, str, int, float, bool, complex, bytes, bytearray)
    }
    names |= {"collections.OrderedDict"}
    return frozenset(names | TRUSTED_MODEL_FUNCTIONS)


# MLflow's sklearn flavour saves pickle/cloudpickle files unless told to use skops (autolog's default):
# loading a pickle runs whatever code it holds, so such a model is stored and registered but never loaded.
PICKLE_REFUSED = (
    "this model file is a pickle (MLflow's pickle/cloudpickle format): loading a pickle runs whatever code it "
    "holds, so MLOps Hub stores it but never loads or deploys it; log the model again in skops format: "
    "mlflow.sklearn.log_model(model, name='model', serialization_format='skops') or "
    "mlflow.sklearn.autolog(serialization_format='skops')"
)


def is_pickle(data: bytes) -> bool:
    """A pickle stream (protocol 2+ starts with PROTO 0x80), as MLflow writes model.pkl."""
    return data[:1] == b"\x80"


MAX_SCHEMA_BYTES = 64 * 1024 * 1024  # schema.json of a real model is kilobytes to a few MB


def _schema_type_names(data: bytes) -> set[str]:
    """Every type a skops file names, read from its schema.json without importing anything: each node's
    module.class, a bound method as module.class.method (never trusted), and the bit generator a numpy
    Generator would call."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            info = z.getinfo("schema.json")
            if info.file_size > MAX_SCHEMA_BYTES:
                raise ValidationError(
                    f"the model file's schema is {info.file_size:,} bytes; a model's is far "
                    "smaller, so this file is refused"
                )
            schema = json.loads(z.read(info))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise
        if is_pickle(data):
            raise ValidationError(PICKLE_REFUSED) from None
        raise ValidationError(f"this is not a skops model file ({exc}); save the model with skops.io.dump") from None

    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if "__class__" in node or "__module__" in node:
            name = f"{node.get('__module__')}.{node.get('__class__')}"
            loader = node.get("__loader__")
            if loader == "MethodNode":
                content = node.get("content")
                name = f"{name}.{content.get('func') if isinstance(content, dict) else content}"
            elif loader == "RandomGeneratorNode":
                try:
                    bitgen = json.loads(node["content"]["bit_generator"]["content"]["bit_generator"]["content"])
                except (KeyError, TypeError, ValueError):
                    bitgen = "<missing>"
                found.add(f"numpy.random.{bitgen}")
            found.add(name)
        stack.extend(node.values())
    return found


def refused_model_types(data: bytes) -> list[str]:
    """The types of a skops file that MLOps Hub does not load (empty: the file may be loaded). Reads the
    schema only; nothing in the file is imported or built."""
    # skops is heavy: loaded only when a model file is read or written
    import skops.io as sio

    trusted = trusted_model_types()
    named = _schema_type_names(data)
    try:
        # What skops itself would materialise (a superset check: it also declares e.g. bit generators).
        named |= set(sio.get_untrusted_types(data=data))
    except Exception as exc:  # noqa: BLE001 - a file skops cannot even parse is not a model
        raise ValidationError(f"this is not a readable skops model file ({type(exc).__name__}: {exc})") from None
    # Types of other libraries first (pandas..., os...): they say best where the file came from.
    return sorted((t for t in named if t not in trusted), key=lambda t: (t.startswith("builtins."), t))


def check_model_bytes(data: bytes) -> None:
    """Refuse, by name, a model file holding any type outside TRUSTED_MODEL_TYPES."""
    refused = refused_model_types(data)
    if refused:
        raise ValidationError(
            f"the model file contains types MLOps Hub does not load: {', '.join(refused)}; models must be "
            "scikit-learn estimators and pipelines of numpy/scipy data, and a FunctionTransformer may only use "
            f"{', '.join(sorted(n.rsplit('.', 1)[1] for n in TRUSTED_MODEL_FUNCTIONS if n.startswith('numpy.')))}"
            " from numpy"
        )


def dump_model(pipeline) -> bytes:
    # skops is heavy: loaded only when a model file is read or written
    import skops.io as sio

    return sio.dumps(pipeline)


def load_model_bytes(data: bytes):
    """Load a skops file, trusting exactly the allow-listed types; anything else is refused by name
    before skops builds anything."""
    # skops is heavy: loaded only when a model file is read or written
    import skops.io as sio

    check_model_bytes(data)
    # Everything the file names is in our list (checked above), so trusting exactly that list is enough.
    return sio.loads(data, trusted=sorted(trusted_model_types()))
