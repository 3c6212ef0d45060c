"""The scoring service under 10,000 requests from 8 concurrent clients, then a clean shutdown (SIGTERM):
every request that was answered 200 is in the prediction log, exactly once."""

from __future__ import annotations

from mlops_core.db import Database
from tests.faults.world import count_rows, load, ok_request_ids, stopped_cleanly

REQUESTS = 10_000
CLIENTS = 8


def test_ten_thousand_requests_from_eight_clients_are_all_in_the_prediction_log_after_sigterm(seeded_pg, services_for):
    url, dep = seeded_pg
    db = Database(url)
    svc = services_for(url)
    base = svc.serve("scoring", dep)

    rids, statuses, elapsed = load(base, dep, total=REQUESTS, clients=CLIENTS)
    assert statuses == {200: REQUESTS}, f"every request answered 200 in {elapsed:.1f} s: {statuses}"
    assert len(set(rids)) == REQUESTS, "each answer has its own request id"

    assert stopped_cleanly(svc, "scoring"), svc.log("scoring")[-3000:]
    logged = ok_request_ids(db, dep.deployment_id)
    assert len(logged) == REQUESTS, f"{REQUESTS - len(logged)} answered predictions are missing from the log"
    assert set(logged) == set(rids), "the log holds exactly the answered requests"
    assert count_rows(db, "predictions", "WHERE status <> 'ok'") == 0
    print(
        f"\n{REQUESTS} requests from {CLIENTS} clients in {elapsed:.1f} s ({REQUESTS / elapsed:,.0f} req/s); "
        f"{len(logged)} logged"
    )
    db.dispose()
