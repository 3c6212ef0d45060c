"""`serve` and `apikey`: the scoring service's commands (top level kept light for a fast --help)."""

from __future__ import annotations

import json

from ..config import get_settings
from ._common import checked_db, system_actor


def cmd_serve(args) -> int:
    import importlib.util

    import uvicorn

    settings = get_settings()
    checked_db()  # refuse to start on a missing or old schema, with the command that fixes it
    port = args.port or settings.mlops_api_port
    host = args.host or settings.mlops_api_host
    # uvloop and httptools are optional speed-ups (uvicorn[standard]); without them uvicorn's own loop serves
    fast = importlib.util.find_spec("uvloop") is not None and importlib.util.find_spec("httptools") is not None
    uvicorn.run(
        "mlops_core.serving.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=max(1, args.workers),
        loop="uvloop" if fast else "auto",
        http="httptools" if fast else "auto",
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=20,
    )
    return 0


def cmd_apikey_create(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..services import apikeys

    k, key = apikeys.create_key(
        checked_db(), actor=system_actor(), deployment_name=args.deployment, name=args.name or ""
    )
    print(
        f"API key {k.prefix}… for deployment {args.deployment} (shown once; send it as 'Authorization: Bearer <key>'):"
    )
    print(key)
    return 0


def cmd_apikey_list(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..services import apikeys

    rows = apikeys.list_keys(checked_db(), deployment_name=args.deployment)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rows]))
        return 0
    print(f"{'id':<6} {'prefix':<12} {'created':<17} {'revoked':<17} name")
    for k in rows:
        revoked = k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "-"
        print(f"{k.id:<6} {k.prefix:<12} {k.created_at:%Y-%m-%d %H:%M} {revoked:<17} {k.name}")
    return 0


def cmd_apikey_revoke(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..services import apikeys

    k = apikeys.revoke_key(checked_db(), actor=system_actor(), key_id=args.id)
    print(f"revoked API key {k.id} ({k.prefix}…)")
    return 0


def register(sub) -> None:
    s = sub.add_parser(
        "serve",
        help="run the REST scoring service (FastAPI + uvicorn)",
        description="Serves every deployment at /v1/deployments/<name>/predict. Deploys and "
        "rollbacks are picked up within seconds without a restart. Several processes "
        "may share one database behind a load balancer.",
    )
    s.add_argument("--port", type=int, default=None, help="port (default: MLOPS_API_PORT, 8000)")
    s.add_argument("--host", default=None, help="interface to listen on (default: MLOPS_API_HOST, 127.0.0.1)")
    s.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    s.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("apikey", help="manage scoring API keys of a deployment")
    ks = s.add_subparsers(dest="apikey_command", metavar="ACTION")
    ks.required = True
    a = ks.add_parser("create", help="create a key for a deployment (printed as the last line, shown once)")
    a.add_argument("--deployment", required=True, help="deployment name, e.g. churn")
    a.add_argument("--name", default="", help="what the key is for (e.g. 'crm integration')")
    a.set_defaults(func=cmd_apikey_create)
    a = ks.add_parser("list", help="list the keys of a deployment (prefixes only)")
    a.add_argument("--deployment", required=True)
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_apikey_list)
    a = ks.add_parser("revoke", help="revoke a key by id (see `apikey list`)")
    a.add_argument("id", type=int)
    a.set_defaults(func=cmd_apikey_revoke)
