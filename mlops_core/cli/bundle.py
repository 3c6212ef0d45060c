"""`deploy bundle`, `deploy upload-key`, `deploy target`, `deploy verify-bundle` (issue 19): a deployment's model
version as a folder to run anywhere, and the keys and target of its hybrid monitoring. With MLOPS_TOKEN set,
`deploy bundle` goes over the Hub API as that person (role and gate rules apply; cli/_hubfiles.py); without one,
these commands act on the Hub's database as the system account (like `apikey create`), where the Hub runs.

The last line of stdout is machine-readable (the bundle's manifest summary, the upload key, the target)."""

from __future__ import annotations

import json

from ._common import CliError, checked_db, system_actor


def cmd_bundle(args) -> int:
    from . import _hubfiles

    if _hubfiles.token_set():  # MLOPS_TOKEN: over the Hub API, as the token's user (role and gates checked)
        return _hubfiles.run_bundle(args)
    from ..services import bundles

    manifest = bundles.build_bundle(
        checked_db(),
        actor=system_actor(),
        deployment_name=args.deployment,
        out_dir=args.out,
        override_reason=args.override_reason or "",
        hub_url=args.hub_url or "",
    )
    print(f"wrote the bundle of {manifest['deployment']} ({manifest['model_version']}) to {args.out}")
    print(f"run it: see {args.out}/README.md (python -m mlops_bundle_server, or docker build {args.out})")
    summary = {k: manifest[k] for k in ("deployment", "model_version", "model_version_id", "model_sha256", "signature")}
    print(json.dumps({**summary, "out": str(args.out)}))
    return 0


def cmd_upload_key(args) -> int:
    from ..services import targets

    k, key = targets.create_upload_key(
        checked_db(), actor=system_actor(), deployment_name=args.deployment, name=args.name or ""
    )
    print(f"upload key {k.prefix}… for {args.deployment} (shown once; set it as MLOPS_UPLOAD_KEY in the bundle):")
    print(key)
    return 0


def cmd_target(args) -> int:
    from ..services import targets

    t = targets.set_target(
        checked_db(), actor=system_actor(), deployment_name=args.deployment, target=args.target, owner=args.owner or ""
    )
    print(json.dumps({"deployment": t.deployment, "target": t.target, "owner": t.owner}))
    return 0


def cmd_verify(args) -> int:
    from ..services import bundles

    try:
        problems = bundles.verify_folder(args.folder)
    except (OSError, ValueError) as exc:
        raise CliError(f"{args.folder} is not a bundle folder: {exc}") from None
    for p in problems:
        print(p)
    print(json.dumps({"ok": not problems, "problems": problems}))
    return 1 if problems else 0


def register_deploy(ds) -> None:
    """Add the bundle actions to the `deploy` group (created by cli/pipeline.py)."""
    a = ds.add_parser(
        "bundle",
        help="write a deployment's model version as a self-contained folder (server, Dockerfile, manifest)",
        description="Refused for a model version that failed its gates unless an admin override exists; "
        "--override-reason records one (audited).",
    )
    a.add_argument("--deployment", required=True, help="deployment name, e.g. churn")
    a.add_argument("--out", required=True, help="a new or empty folder")
    a.add_argument("--hub-url", help="the Hub API URL the bundle uploads its log to (default: none; set MLOPS_HUB_URL)")
    a.add_argument("--override-reason", help="build despite failed gates (audited; admin's decision)")
    a.set_defaults(func=cmd_bundle)
    a = ds.add_parser("upload-key", help="create an upload key for a bundle's prediction log (shown once)")
    a.add_argument("--deployment", required=True)
    a.add_argument("--name", help="what the key is for, e.g. 'edge cluster eu-1'")
    a.set_defaults(func=cmd_upload_key)
    a = ds.add_parser("target", help="set where a deployment runs: hub (default) or bundle")
    a.add_argument("--deployment", required=True)
    a.add_argument("--target", required=True, choices=["hub", "bundle"])
    a.add_argument("--owner", help="username told (inbox) when the version to run changes")
    a.set_defaults(func=cmd_target)
    a = ds.add_parser("verify-bundle", help="check a bundle folder's signature and files (exit 1 if changed)")
    a.add_argument("folder")
    a.set_defaults(func=cmd_verify)
