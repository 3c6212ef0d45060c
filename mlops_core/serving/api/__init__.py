"""The Hub API (DESIGN.md, "Hub API"): /api/v1 routes in the `serve` process, beside the scoring routes.

One module per resource, each a FastAPI `router` that serving/app.py includes under API_V1. Routes take the
caller's Actor from `deps.current_actor` (a personal access token, checked in the database on every request)
and call the same service functions as the UI, so role checks and the audit log are identical; domain errors
become JSON with the right status in `errors`. No SQL in routes."""

API_V1 = "/api/v1"
