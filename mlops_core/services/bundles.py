"""Model bundles (issue 19): one deployment's model version as a self-contained folder to run anywhere.

    DIR/
      model.skops              the version's skops file (the Hub's trusted-types check runs again at load)
      input_schema.json        the training schema the server validates records against
      verify_records.json      sample training rows (+ edge cases) the fast path is verified on at start
      manifest.json            deployment, version, sha256 of every file, gates, HMAC-SHA256 signature
      requirements.txt         the training run's scikit-learn/numpy/pandas/scipy/skops + the server's packages
      Dockerfile, .dockerignore, README.md
      mlops_bundle_server/     the server (copied from mlops_core/bundle_server) and copies of the Hub's pure
                               scoring modules: schema, scoring, fastpath, oip, persistence
      mlflow_model/            the same model as an MLflow python_function model (`mlflow models serve -m`)

The signature is HMAC-SHA256 over the manifest's canonical JSON (sorted keys, without `signature`) with the Hub's
signing key (MLOPS_SESSION_SECRET, else a random key kept in the artifact store): `verify_manifest` tells
whether a manifest was made by this Hub and not changed since; the files' sha256 in it tell whether the files were.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import platform
import secrets
import shutil
import tempfile
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..config import get_settings
from ..db import Database, utcnow
from ..errors import ValidationError
from .auth import Actor

SERVER_PACKAGE = "mlops_bundle_server"
_ROOT = Path(__file__).resolve().parent.parent
# (source in mlops_core, name in the bundle's package, text replacements making it standalone)
PURE_MODULES = [
    ("serving/schema.py", "schema.py", [("from ..config import get_settings", "from .config import get_settings")]),
    ("ml/scoring.py", "scoring.py", []),
    ("ml/fastpath.py", "fastpath.py", []),
    ("serving/oip.py", "oip.py", []),
    (
        "ml/persistence.py",
        "persistence.py",
        [("from ..errors import ValidationError", "from .errors import ValidationError")],
    ),
]
SERVER_FILES = ["__init__.py", "__main__.py", "server.py", "uploader.py", "mlflow_pyfunc.py"]
SHIMS = {
    "errors.py": '"""The one error type the copied modules raise."""\n\n\nclass ValidationError(ValueError):\n    pass\n',
    "config.py": '"""The one setting the copied schema module may read."""\n\nimport os\nfrom types import SimpleNamespace\n\n\n'
    "def get_settings():\n"
    '    return SimpleNamespace(max_string_length=int(os.environ.get("MLOPS_MAX_STRING_LENGTH", "256")))\n',
}
TRAINING_PACKAGES = ("scikit-learn", "numpy", "pandas", "scipy", "skops")
SERVER_PACKAGES = ("fastapi", "uvicorn", "uvloop", "httptools", "orjson", "httpx")
SIGNING_KEY = "secrets/bundle-signing-key"  # noqa: S105 - an artifact key (a path), not a secret


def _signing_key() -> bytes:
    from .. import artifacts

    configured = get_settings().session_secret
    if configured:
        return hashlib.sha256(b"mlops-hub-bundle:" + configured.encode()).digest()
    if not artifacts.exists(SIGNING_KEY):
        artifacts.put_bytes(SIGNING_KEY, secrets.token_hex(32).encode())
    return artifacts.get_bytes(SIGNING_KEY).strip()


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def sign_manifest(manifest: dict[str, Any]) -> str:
    return "hmac-sha256:" + hmac.new(_signing_key(), _canonical(manifest), hashlib.sha256).hexdigest()


def verify_manifest(manifest: dict[str, Any]) -> bool:
    """True when `manifest` was signed by this Hub and is unchanged."""
    return hmac.compare_digest(str(manifest.get("signature", "")), sign_manifest(manifest))


def verify_folder(folder: str | Path) -> list[str]:
    """Problems with a bundle folder: a bad signature, a file missing or changed since it was built."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    problems = (
        [] if verify_manifest(manifest) else ["the manifest's signature does not match (changed, or another Hub)"]
    )
    for name, digest in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{name} was changed since the bundle was built")
    return problems


def _pin(name: str, pinned: dict[str, Any]) -> str | None:
    v = pinned.get(name)
    if not v:
        try:
            v = version(name)
        except PackageNotFoundError:
            return None
    return f"{name}=={v}"


def requirements(training_versions: dict[str, Any]) -> str:
    lines = ["# What the model was trained with (the run's package versions): the skops file loads with these"]
    lines += [p for p in (_pin(n, training_versions) for n in TRAINING_PACKAGES) if p]
    lines += ["# The scoring server (the Hub's own pins)"]
    lines += [p for p in (_pin(n, {}) for n in SERVER_PACKAGES) if p]
    return "\n".join(lines) + "\n"


def dockerfile(python_version: str) -> str:
    minor = ".".join(python_version.split(".")[:2]) or "3.11"
    return f"""# The scoring server of one model version (built by `python -m mlops_core deploy bundle`).
FROM python:{minor}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    MLOPS_HOST=0.0.0.0 \\
    MLOPS_PORT=8080 \\
    MLOPS_BUFFER_DIR=/var/lib/mlops-bundle/buffer

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

RUN groupadd --system --gid 10001 bundle \\
    && useradd --system --uid 10001 --gid bundle --no-create-home bundle \\
    && mkdir -p /var/lib/mlops-bundle/buffer \\
    && chown -R bundle:bundle /var/lib/mlops-bundle
COPY --chown=bundle:bundle . .

USER bundle
EXPOSE 8080
VOLUME ["/var/lib/mlops-bundle/buffer"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \\
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MLOPS_PORT', '8080') + '/healthz', timeout=4)"]

CMD ["python", "-m", "mlops_bundle_server"]
"""


def run_instructions(manifest: dict[str, Any], folder: str = "DIR") -> str:
    dep, port = manifest["deployment"], 8080
    hub = manifest.get("hub_url") or "https://hub.example"
    return f"""# Bundle of {dep}: {manifest["model_version"]}

Keys: an API key for callers (`python -m mlops_core apikey create --deployment {dep}`) and an upload key for
the prediction log (`python -m mlops_core deploy upload-key --deployment {dep}`, or the deployment page).

## As a plain process
    cd {folder}
    python -m venv .venv && .venv/bin/pip install -r requirements.txt
    MLOPS_PORT={port} MLOPS_API_KEYS=<api key> MLOPS_HUB_URL={hub} MLOPS_UPLOAD_KEY=<upload key> \\
        .venv/bin/python -m mlops_bundle_server

## As a container
    docker build -t {dep}-bundle {folder}
    docker run -p {port}:8080 -e MLOPS_API_KEYS=<api key> -e MLOPS_HUB_URL={hub} \\
        -e MLOPS_UPLOAD_KEY=<upload key> -v {dep}-buffer:/var/lib/mlops-bundle/buffer {dep}-bundle

## Try it
    curl -s localhost:{port}/v1/deployments/{dep}/predict -H 'Authorization: Bearer <api key>' \\
        -H 'Content-Type: application/json' -d '{{"records": [{{...}}]}}'
    curl -s localhost:{port}/bundle/status          # buffered rows, drops, last upload

The same request/response contract as the Hub's service (/v1/deployments/{dep}/predict, /feedback, and the
Open Inference Protocol under /v2). Predictions and labels are buffered in MLOPS_BUFFER_DIR (bounded by
MLOPS_BUFFER_MAX_ROWS; the oldest rows are dropped and counted when full) and sent to the Hub in batches.
Check the files: `python -m mlops_core deploy verify-bundle {folder}` on the Hub.

## As an MLflow model (MLflow, and through it SageMaker, Azure ML, Databricks)
    mlflow models serve -m {folder}/mlflow_model --env-manager local -p {port}
    curl -s localhost:{port}/invocations -H 'Content-Type: application/json' -d '{{"dataframe_records": [{{...}}]}}'
(MLflow's server answers {{"predictions": [...]}} and does not send the log to the Hub: use the bundle server
for hybrid monitoring.)
"""


def _copy_server(dest: Path) -> None:
    pkg = dest / SERVER_PACKAGE
    pkg.mkdir(parents=True, exist_ok=True)
    for name in SERVER_FILES:
        shutil.copyfile(_ROOT / "bundle_server" / name, pkg / name)
    for src, name, replacements in PURE_MODULES:
        text = (_ROOT / src).read_text()
        for old, new in replacements:
            if old not in text:
                raise RuntimeError(f"cannot make {src} standalone: {old!r} is not in it any more")
            text = text.replace(old, new)
        (pkg / name).write_text(text)
    for name, text in SHIMS.items():
        (pkg / name).write_text(text)


def mlmodel_text(python_version: str, sklearn_version: str, created: str) -> str:
    """The MLmodel file of the bundle's MLflow-format model (a python_function model, loader in code/)."""
    import uuid

    return (
        "flavors:\n"
        "  python_function:\n"
        "    code: code\n"
        "    data: model.skops\n"
        "    env:\n"
        "      virtualenv: python_env.yaml\n"
        f"    loader_module: {SERVER_PACKAGE}.mlflow_pyfunc\n"
        f"    python_version: {python_version}\n"
        "metadata:\n"
        "  serialization_format: skops\n"
        f"  sklearn_version: {sklearn_version}\n"
        f"model_uuid: {uuid.uuid4().hex}\n"
        f"utc_time_created: '{created}'\n"
    )


def _write_mlflow_model(out: Path, data: bytes, schema_json: str, reqs: str, py: str, sklearn_version: str) -> None:
    """DIR/mlflow_model: the same model file and schema, the server package as its code, an MLmodel file."""
    mdir = out / "mlflow_model"
    (mdir / "code").mkdir(parents=True)
    (mdir / "model.skops").write_bytes(data)
    (mdir / "input_schema.json").write_text(schema_json)
    shutil.copytree(out / SERVER_PACKAGE, mdir / "code" / SERVER_PACKAGE)
    (mdir / "requirements.txt").write_text(reqs)
    (mdir / "python_env.yaml").write_text(
        f"python: {py}\nbuild_dependencies:\n  - pip\ndependencies:\n  - -r requirements.txt\n"
    )
    (mdir / "MLmodel").write_text(mlmodel_text(py, sklearn_version, utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")))


def build_bundle(
    db: Database,
    *,
    actor: Actor,
    deployment_name: str,
    out_dir: str | Path,
    override_reason: str = "",
    hub_url: str | None = None,
) -> dict[str, Any]:
    """Write the bundle of the deployment's current model version into `out_dir` (empty or new); returns the
    manifest. Refused for a version that failed its gates unless an admin overrides (audited)."""
    from ..serving.schema import frame_to_records, probe_records
    from . import datasets, experiments, registry, targets

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ValidationError(f"{out} is not empty; give a new or empty folder")
    source = targets.bundle_source(db, actor=actor, deployment_name=deployment_name, override_reason=override_reason)
    mv = registry.get_model_version(db, source["model_version_id"])
    _, data = registry.model_file(db, mv.id)
    run = experiments.get_run(db, mv.run_id)
    training = dict(run.package_versions or {})
    names = [c["name"] for c in mv.input_schema]
    sample: list[dict[str, Any]] = []
    if mv.dataset_version_id is not None:
        frame = datasets.load_frame(db, mv.dataset_version_id)
        sample = frame_to_records(frame, names, limit=50)
        sample += probe_records(sample, {c["name"]: c.get("type", "string") for c in mv.input_schema})

    out.mkdir(parents=True, exist_ok=True)
    (out / "model.skops").write_bytes(data)
    (out / "input_schema.json").write_text(json.dumps(mv.input_schema, indent=2))
    (out / "verify_records.json").write_text(json.dumps(sample, default=str))
    (out / "requirements.txt").write_text(requirements(training))
    py = str(training.get("python") or platform.python_version())
    (out / "Dockerfile").write_text(dockerfile(py))
    (out / ".dockerignore").write_text("buffer/\n.venv/\n__pycache__/\n*.pyc\n")
    _copy_server(out)
    _write_mlflow_model(
        out,
        data,
        (out / "input_schema.json").read_text(),
        (out / "requirements.txt").read_text(),
        py,
        str(training.get("scikit-learn") or version("scikit-learn")),
    )
    settings = get_settings()
    files = {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }
    manifest: dict[str, Any] = {
        "format": "mlops-hub-bundle/1",
        "deployment": source["deployment"],
        "model_name": mv.model_name,
        "model_version": f"{mv.model_name} v{mv.version}",
        "model_version_id": mv.id,
        "model_file": "model.skops",
        "model_sha256": hashlib.sha256(data).hexdigest(),
        "task": mv.task,
        "training_packages": training,
        "python": py,
        "gates": source["gates"],
        "gate_override": source["override"],
        "limits": {
            "max_records_per_request": settings.max_records_per_request,
            "max_request_bytes": settings.max_request_bytes,
            "max_string_length": settings.max_string_length,
        },
        "hub_url": (hub_url or "").rstrip("/"),
        "built_by": actor.username,
        "built_at": utcnow().isoformat(),
        "files": files,
    }
    manifest["signature"] = sign_manifest(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    (out / "README.md").write_text(run_instructions(manifest, str(out)))
    summary = {k: manifest[k] for k in ("model_version", "model_version_id", "model_sha256", "built_at", "signature")}
    targets.record_bundle(db, actor=actor, deployment_name=deployment_name, manifest=summary)
    return manifest


def bundle_zip(
    db: Database, *, actor: Actor, deployment_name: str, override_reason: str = "", hub_url: str | None = None
) -> tuple[str, bytes]:
    """(file name, zip bytes) of a freshly built bundle, for a download button."""
    with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
        folder = Path(tmp) / f"{deployment_name}-bundle"
        manifest = build_bundle(
            db,
            actor=actor,
            deployment_name=deployment_name,
            out_dir=folder,
            override_reason=override_reason,
            hub_url=hub_url,
        )
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(folder.rglob("*")):
                if p.is_file():
                    z.write(p, str(p.relative_to(folder.parent)))
        version_no = manifest["model_version"].rpartition(" v")[2]
        return f"{deployment_name}-bundle-v{version_no}.zip", buf.getvalue()
