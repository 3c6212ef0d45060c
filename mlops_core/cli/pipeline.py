"""Commands for CI/CD pipelines: `experiment run`, `model register`, `deploy request`, `run status`.

They talk ONLY to the Hub API over HTTP (`MLOPS_HUB_URL`, default http://127.0.0.1:8000, and a personal
access token in `MLOPS_TOKEN`): a CI job holds no database credentials, and the server checks the token's
role exactly as the UI does (DESIGN.md, "CLI for pipelines").

Exit codes: 0 fine, 1 a check failed (a model KPI missed, a deployment gate failed), 2 bad input or an error
(with a one-line `error: ...` on stderr). The LAST line of stdout is always a JSON summary, errors included,
so a pipeline step can `tail -n1 | jq`. Progress goes to stderr.

The top level imports nothing heavy (`--help` stays fast): httpx is imported when a command runs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

API = "/api/v1"

# Keys the training config file may hold: the fields of the UI's launch form (pages/experiments.py).
CONFIG_KEYS = {
    "target",
    "task",
    "features",
    "algorithm",
    "algorithms",
    "params",
    "search",
    "n_iter",
    "split",
    "test_size",
    "folds",
    "seed",
    "name",
}

# Run tags recorded on every run started from CI: (tag, environment variable) per CI system.
CI_VARIABLES = {
    "github": [("ci.commit", "GITHUB_SHA"), ("ci.pipeline", "GITHUB_RUN_ID"), ("ci.repository", "GITHUB_REPOSITORY")],
    "gitlab": [("ci.commit", "CI_COMMIT_SHA"), ("ci.pipeline", "CI_PIPELINE_ID"), ("ci.repository", "CI_PROJECT_PATH")],
}

TERMINAL_RUN = {"finished", "failed", "cancelled"}


class PipelineError(Exception):
    """Bad input or an error: exit 2 with this sentence."""


class HubError(PipelineError):
    """The Hub answered with an error status; `detail` is its sentence that says how to fix."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status


# --- the Hub client ---------------------------------------------------------------------------------


class Hub:
    """A small httpx client of /api/v1: bearer token, JSON errors turned into sentences, retries with backoff
    when the connection is lost (a Hub restarting during a deploy must not fail a pipeline)."""

    RETRIES = 5

    def __init__(self, url: str, token: str, *, sleep: Callable[[float], None] = time.sleep, transport=None):
        import httpx

        self.url = url.rstrip("/")
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(60.0, connect=5.0),
            transport=transport,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": "mlops-hub-cli"},
        )

    @classmethod
    def from_env(cls) -> Hub:
        from ..config import Settings

        settings = Settings()  # fresh: a CI step exports the variables just before running the command
        token = (settings.mlops_token or "").strip()
        if not token:
            raise PipelineError(
                "MLOPS_TOKEN is not set: create a personal access token on the My account page (or with "
                "`python -m mlops_core user token <username>`) and store it as the CI secret MLOPS_TOKEN"
            )
        url = (settings.hub_url or "").strip()
        if not url.startswith(("http://", "https://")):
            raise PipelineError(f"MLOPS_HUB_URL must start with http:// or https://, got {url!r}")
        return cls(url, token)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kw) -> Any:
        import httpx

        delay = 0.5
        for attempt in range(self.RETRIES + 1):
            try:
                resp = self._http.request(method, API + path, **kw)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectTimeout) as exc:
                # Only retry what cannot have been applied twice: a refused connection, or a read of a GET.
                if attempt == self.RETRIES or (
                    method != "GET" and not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                ):
                    raise PipelineError(
                        f"cannot reach the Hub at {self.url} ({exc.__class__.__name__}: {exc}); "
                        "check MLOPS_HUB_URL and that `python -m mlops_core serve` runs"
                    ) from exc
                self._sleep(delay)
                delay = min(delay * 2, 8.0)
                continue
            if resp.status_code == 503 and attempt < self.RETRIES:
                self._sleep(delay)
                delay = min(delay * 2, 8.0)
                continue
            if resp.status_code >= 400:
                raise HubError(resp.status_code, _detail(resp))
            return resp.json() if resp.content else None
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict | None = None) -> Any:
        return self.request("POST", path, json=body or {})

    def put(self, path: str, body: dict | None = None) -> Any:
        return self.request("PUT", path, json=body or {})


def _detail(resp) -> str:
    try:
        body = resp.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's own 422 body: name the field
        detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    if not detail:
        detail = (resp.text or "").strip()[:300] or resp.reason_phrase
    if resp.status_code == 401:
        return f"the Hub refused the token ({detail}); store a valid, unexpired token as MLOPS_TOKEN"
    return str(detail)


# --- output -------------------------------------------------------------------------------------------


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _finish(summary: dict[str, Any], code: int) -> int:
    summary["exit_code"] = code
    # A command whose stdout is its payload (the report's HTML without --out) says so: the summary then goes to
    # stderr, so `report ... > report.html` is a clean file.
    stream = sys.stderr if summary.pop("_payload_on_stdout", False) else sys.stdout
    print(json.dumps(summary, default=str, sort_keys=True), file=stream, flush=True)
    return code


def _command(name: str, fn: Callable[[Any, Hub, dict], int]) -> Callable[[Any], int]:
    """Runs `fn(args, hub, summary)`; any bad input or error becomes exit 2 with a sentence on stderr and the
    JSON summary (with `error`) still as the last line of stdout."""

    def run(args) -> int:
        summary: dict[str, Any] = {"command": name, "ok": False}
        hub = None
        try:
            hub = Hub.from_env()
            summary["hub"] = hub.url
            code = fn(args, hub, summary)
            summary["ok"] = code == 0
            return _finish(summary, code)
        except PipelineError as exc:
            summary["error"] = str(exc)
            if isinstance(exc, HubError):
                summary["http_status"] = exc.status
            _say(f"error: {exc}")
            return _finish(summary, 2)
        except KeyboardInterrupt:
            summary["error"] = "interrupted"
            return _finish(summary, 130)
        finally:
            if hub is not None:
                hub.close()

    return run


# --- inputs -------------------------------------------------------------------------------------------


def ci_tags(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The commit and pipeline this process runs in, from GitHub Actions or GitLab CI variables ({} outside CI)."""
    env = os.environ if environ is None else environ
    for provider, pairs in CI_VARIABLES.items():
        tags = {tag: env[var] for tag, var in pairs if env.get(var)}
        if tags:
            tags["ci.provider"] = provider
            if provider == "github" and env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
                server = env.get("GITHUB_SERVER_URL") or "https://github.com"
                tags["ci.pipeline_url"] = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
            elif provider == "gitlab" and env.get("CI_PIPELINE_URL"):
                tags["ci.pipeline_url"] = env["CI_PIPELINE_URL"]
            return tags
    return {}


def load_config(path: str) -> dict[str, Any]:
    """The training config file (TOML, or YAML when PyYAML is installed) checked for known keys."""
    p = Path(path)
    if not p.is_file():
        raise PipelineError(f"config file {path} not found; pass the path of a TOML file such as docs/ci/train.toml")
    suffix = p.suffix.lower()
    text = p.read_text(encoding="utf-8")
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise PipelineError(
                f"{path} is YAML but PyYAML is not installed; `pip install pyyaml` or write the config as TOML"
            ) from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PipelineError(f"{path} is not valid YAML: {exc}") from None
    else:
        import tomllib

        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PipelineError(f"{path} is not valid TOML ({exc}); YAML files must end in .yaml or .yml") from None
    if not isinstance(raw, dict):
        raise PipelineError(f"{path} must hold key = value settings (target, algorithms, params, ...)")
    unknown = sorted(set(raw) - CONFIG_KEYS)
    if unknown:
        raise PipelineError(f"{path}: unknown setting(s) {', '.join(unknown)}; use {', '.join(sorted(CONFIG_KEYS))}")
    if not raw.get("target"):
        raise PipelineError(f"{path}: set target = \"<the column to predict>\"")
    algorithms = raw.get("algorithms", raw.get("algorithm"))
    if isinstance(algorithms, str):
        algorithms = [algorithms]
    if not algorithms or not isinstance(algorithms, list) or not all(isinstance(a, str) and a for a in algorithms):
        raise PipelineError(f"{path}: set algorithms = [\"random_forest\", ...] (or algorithm = \"...\")")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise PipelineError(f"{path}: params must be a table of hyperparameter = value (a list of values is a search)")
    # params may be per algorithm ([params.random_forest] ...) or, with one algorithm, flat.
    if params and all(isinstance(v, dict) for v in params.values()):
        stray = sorted(set(params) - set(algorithms))
        if stray:
            raise PipelineError(
                f"{path}: params for {', '.join(stray)}, which is not in algorithms ({', '.join(algorithms)})"
            )
        by_algorithm = {a: dict(params.get(a, {})) for a in algorithms}
    elif params:
        if len(algorithms) > 1:
            raise PipelineError(
                f"{path}: with several algorithms, give params per algorithm ([params.<algorithm>] tables)"
            )
        by_algorithm = {algorithms[0]: dict(params)}
    else:
        by_algorithm = None
    config = {k: v for k, v in raw.items() if k not in ("algorithm", "algorithms", "params", "name")}
    return {
        "config": config,
        "algorithms": list(algorithms),
        "params_by_algorithm": by_algorithm,
        "name": raw.get("name"),
    }


# --- KPI verdict ----------------------------------------------------------------------------------------


def _kpis(hub: Hub, run: dict, cache: dict | None = None) -> list[dict]:
    """The run's model KPI checks (met / warning / missed / unknown): the use case's model KPIs from the Hub,
    judged with the Hub's own rule (mlops_core.kpi.evaluate, as usecases.evaluate_metrics does)."""
    from ..kpi import evaluate

    if run.get("use_case_id") is None:
        return []
    cache = {} if cache is None else cache
    uc_id = run["use_case_id"]
    if uc_id not in cache:
        cache[uc_id] = hub.get(f"/use-cases/{uc_id}/kpis", kind="model", limit=500)["items"]
    metrics = run.get("metrics") or {}
    out = []
    for k in cache[uc_id]:
        value = metrics.get(k["metric"], metrics.get(f"test_{k['metric']}"))
        value = None if value is None else float(value)
        out.append(
            {
                "kpi": k.get("name"),
                "metric": k["metric"],
                "direction": k["direction"],
                "target": k["target"],
                "value": value,
                "status": evaluate(k["direction"], k["target"], k.get("warning"), value),
            }
        )
    return out


def _run_line(run: dict) -> dict:
    return {
        "id": run["id"],
        "name": run.get("name"),
        "algorithm": run.get("algorithm"),
        "status": run.get("status"),
        "metrics": run.get("metrics") or {},
        "tags": run.get("tags") or {},
        "error": run.get("error"),
    }


def wait_for_runs(
    hub: Hub,
    run_ids: list[int],
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict]:
    """Poll the runs with backoff (0.5 s doubling to 10 s) until each has ended; progress lines on stderr."""
    deadline = clock() + timeout
    delay = 0.5
    runs: dict[int, dict] = {}
    said: dict[int, tuple] = {}
    while True:
        for rid in run_ids:
            if rid in runs and runs[rid].get("status") in TERMINAL_RUN:
                continue
            run = hub.get(f"/runs/{rid}")
            runs[rid] = run
            line = (run.get("status"), round(float(run.get("progress") or 0), 2), run.get("progress_message"))
            if said.get(rid) != line:
                said[rid] = line
                _say(f"run {rid}: {line[0]} {line[1]:.0%} {line[2] or ''}".rstrip())
        if all(runs[r].get("status") in TERMINAL_RUN for r in run_ids):
            return [runs[r] for r in run_ids]
        if clock() >= deadline:
            pending = ", ".join(str(r) for r in run_ids if runs[r].get("status") not in TERMINAL_RUN)
            raise PipelineError(
                f"run(s) {pending} did not end within {timeout:g} s; is a worker running "
                "(`python -m mlops_core worker`)? Raise --timeout for long trainings"
            )
        sleep(min(delay, max(0.0, deadline - clock())))
        delay = min(delay * 2, 10.0)


# --- commands --------------------------------------------------------------------------------------------


def cmd_experiment_run(args, hub: Hub, summary: dict) -> int:
    spec = load_config(args.config)
    tags = ci_tags()
    body = {
        "use_case": args.use_case,
        "dataset": args.dataset,
        "config": spec["config"],
        "algorithms": spec["algorithms"],
        "params_by_algorithm": spec["params_by_algorithm"],
        "name": args.name or spec["name"],
        "tags": tags,
        "source": "ci",
    }
    summary.update(use_case=args.use_case, dataset=args.dataset, tags=tags)
    runs = hub.post("/runs/launch", body)["runs"]
    ids = [int(r["id"]) for r in runs]
    summary["run_ids"] = ids
    _say(f"queued run(s) {', '.join(map(str, ids))} on {args.dataset} for {args.use_case!r}")
    if not args.wait:
        summary.update(verdict="queued", runs=[_run_line(r) for r in runs], run_id=ids[0])
        return 0
    ended = wait_for_runs(hub, ids, timeout=args.timeout)
    lines, use_cases = [], {}
    for run in ended:
        line = _run_line(run)
        if run.get("status") == "finished":
            line["kpis"] = _kpis(hub, run, use_cases)
            line["kpis_met"] = all(k["status"] == "met" for k in line["kpis"])
        lines.append(line)
    summary["runs"] = lines
    finished = [line for line in lines if line["status"] == "finished"]
    if not finished:
        errs = "; ".join(
            f"run {line['id']} {line['status']}: {(line['error'] or '').strip().splitlines()[-1:]}" for line in lines
        )
        raise PipelineError(f"no run finished ({errs}); open the run on the Experiments page for its log")
    good = [line for line in finished if line["kpis_met"]]
    best = (good or finished)[0]
    summary["run_id"] = best["id"]
    for line in lines:
        for k in line.get("kpis", []):
            _say(
                f"run {line['id']}: KPI {k['kpi']} ({k['metric']} {k['direction']} {k['target']}): "
                f"{k['value']} -> {k['status']}"
            )
    if not best.get("kpis"):
        summary["verdict"] = "no_kpis"
        _say("the use case has no model KPI: nothing to check (a business user adds KPIs on the use case page)")
        return 0
    summary["verdict"] = "met" if good else "missed"
    if good:
        _say(f"run {best['id']} meets every model KPI")
        return 0
    _say("no run meets every model KPI")
    return 1


def cmd_model_register(args, hub: Hub, summary: dict) -> int:
    # The alias goes with the registration: one request, so a refused alias leaves no stray version.
    mv = hub.post("/models", {"run_id": args.run, "name": args.name, "alias": args.alias})
    summary.update(
        model=mv["model_name"],
        version=mv["version"],
        model_version_id=mv["id"],
        run_id=args.run,
        ref=f"{mv['model_name']}:{mv['version']}",
    )
    _say(f"registered run {args.run} as {summary['ref']}")
    if args.alias:
        summary["alias"] = args.alias
        summary["alias_ref"] = f"{args.name}@{args.alias}"
        _say(f"{args.name}@{args.alias} -> version {mv.get('version')}")
    return 0


def _gate_verdict(gates: list[dict]) -> str:
    """passed: nothing blocks; awaiting_signoff: only the business sign-off is still to come; failed."""
    failed = [g for g in gates if g.get("status") == "failed"]
    if not failed:
        return "passed"
    # The Hub's own test for a sign-off still to be decided (deployments.request_deployment).
    if all(g.get("gate") == "business_signoff" and (g.get("detail") or "").startswith("waiting") for g in failed):
        return "awaiting_signoff"
    return "failed"


def cmd_deploy_request(args, hub: Hub, summary: dict) -> int:
    # The Hub resolves NAME@ALIAS / NAME:VERSION (and says how to write a malformed one).
    body: dict[str, Any] = {"model": args.model, "note": args.note or ""}
    if args.environment:
        body["environment"] = args.environment
    tags = ci_tags()
    if tags and not body["note"]:
        body["note"] = " ".join(f"{k}={v}" for k, v in tags.items() if k != "ci.pipeline_url")
    req = hub.post(f"/deployments/{args.deployment}/requests", body)
    summary.update(
        deployment=args.deployment,
        model=args.model,
        model_version_id=req["model_version_id"],
        environment=req.get("environment"),
        request_id=req["id"],
    )
    verdict = _gate_verdict(req.get("gates", []))
    if args.wait and verdict == "awaiting_signoff":
        deadline = time.monotonic() + args.timeout
        delay = 1.0
        _say(f"request {req['id']}: waiting for the business sign-off (up to {args.timeout:g} s)")
        while verdict == "awaiting_signoff" and req.get("status") == "pending":
            if time.monotonic() >= deadline:
                raise PipelineError(
                    f"request {req['id']} still awaits the business sign-off after "
                    f"{args.timeout:g} s; a business user decides it in the Inbox"
                )
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 15.0)
            req = hub.get(f"/deployment-requests/{req['id']}")
            verdict = _gate_verdict(req.get("gates", []))
        if req.get("status") == "rejected":
            verdict = "failed"
    gates = req.get("gates", [])
    for g in gates:
        _say(f"gate {g.get('gate')}: {g.get('status')} - {g.get('detail')}")
    summary.update(
        verdict=verdict,
        status=req.get("status"),
        gates=[{"gate": g.get("gate"), "status": g.get("status"), "detail": g.get("detail")} for g in gates],
    )
    return 1 if verdict == "failed" else 0


def cmd_run_status(args, hub: Hub, summary: dict) -> int:
    run = hub.get(f"/runs/{args.run_id}")
    summary.update(
        run=_run_line(run),
        progress=run.get("progress"),
        use_case_id=run.get("use_case_id"),
        dataset_version_id=run.get("dataset_version_id"),
    )
    if run.get("status") == "finished":
        summary["run"]["kpis"] = _kpis(hub, run)
    _say(f"run {run['id']}: {run.get('status')} {run.get('progress_message') or ''}".rstrip())
    return 0


# --- registration ---------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a run id (a positive whole number)")
    return int(text)


def _json_usage_errors(parser, name: str) -> None:
    """A missing or malformed option is bad input too: exit 2 with argparse's sentence, and the JSON summary
    still as the last line of stdout (a pipeline step parses it whatever happened)."""

    def error(message: str):
        parser.print_usage(sys.stderr)
        _say(f"error: {message}")
        _finish({"command": name, "ok": False, "error": message}, 2)
        raise SystemExit(2)

    parser.error = error


def register(sub) -> None:
    common = "over the Hub API (MLOPS_HUB_URL, MLOPS_TOKEN); exit 0 fine, 1 check failed, 2 error; JSON last line"
    s = sub.add_parser("experiment", help="launch no-code training runs from a pipeline")
    es = s.add_subparsers(dest="experiment_command", metavar="ACTION")
    es.required = True
    a = es.add_parser("run", help="launch a training job; with --wait exit by the KPI verdict", description=common)
    a.add_argument("--use-case", required=True, help="use case title or id")
    a.add_argument("--dataset", required=True, help="dataset version, e.g. customers@v3 or customers@latest")
    a.add_argument("--config", required=True, help="training config file (TOML; YAML if PyYAML is installed)")
    a.add_argument("--name", help="run name (default: from the config, else algorithm and target)")
    a.add_argument("--wait", action="store_true", help="follow the runs and exit by the model KPIs (0 met, 1 missed)")
    a.add_argument("--timeout", type=float, default=3600, help="seconds to wait with --wait (default 3600)")
    a.set_defaults(func=_command("experiment run", cmd_experiment_run))
    _json_usage_errors(a, "experiment run")

    s = sub.add_parser("model", help="register model versions from a pipeline")
    ms = s.add_subparsers(dest="model_command", metavar="ACTION")
    ms.required = True
    a = ms.add_parser("register", help="register a finished run as a model version", description=common)
    a.add_argument("--run", required=True, type=_positive_int, help="run id (from `experiment run`)")
    a.add_argument("--name", required=True, help="registered model name, e.g. churn-classifier")
    a.add_argument("--alias", help="point this alias (e.g. candidate) at the new version")
    a.set_defaults(func=_command("model register", cmd_model_register))
    _json_usage_errors(a, "model register")

    s = sub.add_parser("deploy", help="request deployments from a pipeline")
    ds = s.add_subparsers(dest="deploy_command", metavar="ACTION")
    ds.required = True
    a = ds.add_parser(
        "request", help="request a deployment; exit by the gates (0 pass, 1 a gate failed)", description=common
    )
    a.add_argument("--deployment", required=True, help="deployment (endpoint) name, e.g. churn")
    a.add_argument("--model", required=True, help="NAME@ALIAS or NAME:VERSION")
    a.add_argument(
        "--environment", choices=["staging", "production"], help="environment of a new deployment (default: production)"
    )
    a.add_argument("--note", help="note for the reviewers (default in CI: the commit and pipeline)")
    a.add_argument("--wait", action="store_true", help="wait for the business sign-off before exiting")
    a.add_argument("--timeout", type=float, default=3600, help="seconds to wait with --wait (default 3600)")
    a.set_defaults(func=_command("deploy request", cmd_deploy_request))
    _json_usage_errors(a, "deploy request")
    from .bundle import register_deploy  # deploy bundle / upload-key / target / verify-bundle (issue 19)

    register_deploy(ds)

    s = sub.add_parser("run", help="read runs from a pipeline")
    rs = s.add_subparsers(dest="run_command", metavar="ACTION")
    rs.required = True
    a = rs.add_parser("status", help="a run's status, metrics and KPI checks", description=common)
    a.add_argument("run_id", type=_positive_int)
    a.set_defaults(func=_command("run status", cmd_run_status))
    _json_usage_errors(a, "run status")
