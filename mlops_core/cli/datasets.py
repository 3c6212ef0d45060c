"""`python -m mlops_core dataset add NAME PATH [--use-case ID|TITLE]` and `dataset list`.

Top level stays light (no pandas/pyarrow): `--help` must be fast. The CLI acts as the system
account on this machine (like `user add`), so a local file anywhere may be registered.
"""

from __future__ import annotations

import json

from ._common import checked_db, system_actor


def cmd_dataset_add(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..services import datasets

    db = checked_db()
    use_case_id = datasets.resolve_use_case(db, args.use_case) if args.use_case else None
    v = datasets.register_version_from_path(
        db,
        actor=system_actor(),
        dataset_name=args.name,
        path=args.path,
        use_case_id=use_case_id,
        description=args.description or "",
        source_kind="cli",
        restrict_to_roots=False,
    )
    if v.deduplicated:
        print(f"{v.ref}: same content as the existing version; nothing new stored")
    else:
        print(
            f"registered {v.ref}: {v.n_rows:,} rows x {v.n_cols} columns, {v.status} "
            f"({v.n_errors} errors, {v.n_warnings} warnings)"
        )
        if v.status == "failed":
            for f in datasets.get_report(db, v.id).findings:
                if f.severity == "error":
                    print(f"  error: {f.message}")
    print(
        json.dumps(
            {
                "ref": v.ref,
                "version_id": v.id,
                "status": v.status,
                "deduplicated": v.deduplicated,
                "content_hash": v.content_hash,
            }
        )
    )
    return 0


def cmd_dataset_list(args) -> int:
    # kept out of the CLI's top level so --help stays fast
    from ..services import datasets

    db = checked_db()
    use_case_id = datasets.resolve_use_case(db, args.use_case) if args.use_case else None
    rows = datasets.list_datasets(db, use_case_id=use_case_id)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rows]))
        return 0
    print(f"{'name':<30} {'use case':<9} {'versions':<9} latest")
    for d in rows:
        latest = f"v{d.latest_version} ({d.latest_status})" if d.latest_version else "-"
        print(f"{d.name:<30} {str(d.use_case_id or '-'):<9} {d.n_versions:<9} {latest}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("dataset", help="register and list datasets")
    ds = s.add_subparsers(dest="dataset_command", metavar="ACTION")
    ds.required = True
    a = ds.add_parser("add", help="register a CSV or Parquet file as a new version of dataset NAME")
    a.add_argument("name", metavar="NAME")
    a.add_argument("path", metavar="PATH")
    a.add_argument("--use-case", default=None, help="the use case (id or exact title) the dataset belongs to")
    a.add_argument("--description", default=None)
    a.set_defaults(func=cmd_dataset_add)
    a = ds.add_parser("list", help="list datasets and their latest versions")
    a.add_argument("--use-case", default=None, help="only this use case's datasets (id or title)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_dataset_list)
