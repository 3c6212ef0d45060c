"""Use-case functions: keyword-only, role-checked, audited, returning plain objects.

Convention: `fn(db, *, actor, ...)` where `db` is a `mlops_core.db.Database` and
`actor` a `mlops_core.services.auth.Actor`. One call is one unit of work.
"""
