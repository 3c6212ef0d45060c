"""`report` and `deploy bundle` over the Hub API when a token is set (MLOPS_TOKEN): a CI job holding only
MLOPS_HUB_URL + MLOPS_TOKEN downloads the use case report (HTML) or a deployment's bundle (zip, extracted
safely). Errors and exit codes as in cli/pipeline.py: 2 bad input or an error, JSON summary last on stdout."""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from .pipeline import API, HubError, PipelineError, _command, _detail


def token_set() -> bool:
    from ..config import Settings

    return bool((Settings().mlops_token or "").strip())


def _fetch(hub, method: str, path: str, **kw) -> bytes:
    import httpx

    try:
        resp = hub._http.request(method, API + path, headers={"Accept": "*/*"}, timeout=300.0, **kw)
    except httpx.HTTPError as exc:
        raise PipelineError(
            f"cannot reach the Hub at {hub.url} ({exc.__class__.__name__}: {exc}); "
            "check MLOPS_HUB_URL and that `python -m mlops_core serve` runs"
        ) from exc
    if resp.status_code >= 400:
        raise HubError(resp.status_code, _detail(resp))
    return resp.content


def _report(args, hub, summary: dict) -> int:
    summary["use_case"] = args.use_case
    data = _fetch(hub, "GET", f"/use-cases/{quote(str(args.use_case), safe='')}/report")
    if not args.out:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.write("\n")
        summary["_payload_on_stdout"] = True  # the JSON summary goes to stderr: stdout stays the HTML alone
    else:
        out = Path(args.out)
        out.write_bytes(data)
        summary["path"] = str(out)
    summary["sha256"] = hashlib.sha256(data).hexdigest()
    summary["bytes"] = len(data)
    return 0


def safe_extract(data: bytes, out: Path) -> list[str]:
    """Extract a zip into `out` (new or empty), refusing absolute paths and '..' members before writing any."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        for n in names:
            p = PurePosixPath(n.replace("\\", "/"))
            if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
                raise PipelineError(f"the bundle holds an unsafe path {n!r}; refused, nothing extracted")
        if out.exists() and any(out.iterdir()):
            raise PipelineError(f"{out} is not empty; give a new or empty folder")
        out.mkdir(parents=True, exist_ok=True)
        root = out.resolve()
        for info in zf.infolist():
            target = (out / info.filename).resolve()
            if root not in target.parents and target != root:
                raise PipelineError(f"the bundle holds an unsafe path {info.filename!r}; refused")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
    return names


def _bundle(args, hub, summary: dict) -> int:
    import json

    summary.update(deployment=args.deployment, out=str(args.out))
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise PipelineError(f"{out} is not empty; give a new or empty folder")
    body = {"override_reason": args.override_reason or "", "hub_url": args.hub_url or ""}
    data = _fetch(hub, "POST", f"/deployments/{quote(args.deployment, safe='')}/bundle", json=body)
    try:
        safe_extract(data, out)
    except zipfile.BadZipFile as exc:
        raise PipelineError(f"the Hub's answer is not a zip: {exc}") from None
    manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
    for k in ("model_version", "model_version_id", "model_sha256", "signature"):
        if k in manifest:
            summary[k] = manifest[k]
    print(f"wrote the bundle of {args.deployment} to {out} (see {out}/README.md)", file=sys.stderr)
    return 0


run_report = _command("report", _report)
run_bundle = _command("deploy bundle", _bundle)
