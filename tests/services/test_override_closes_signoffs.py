"""Issue 15 (review): an admin override settles a deployment request like any decision, so the business
sign-off it asked for and the "please sign off" notifications are closed for everyone (both legs)."""

from __future__ import annotations

from sqlmodel import select

from mlops_core.models.collab import InboxItem
from mlops_core.models.users import User
from mlops_core.services import collab, deployments
from tests.services.deployments_world import make_world


def _unread_signoff_items(db, username: str) -> int:
    with db.read() as s:
        uid = s.exec(select(User.id).where(User.username == username)).one()
        items = s.exec(
            select(InboxItem).where(InboxItem.user_id == uid, InboxItem.kind == "signoff", InboxItem.read_at.is_(None))
        ).all()
        return len(items)


def test_an_admin_override_closes_the_pending_signoff_and_its_notifications(db, people):
    w = make_world(db, people, target=0.99)  # the KPI gate fails as well as the missing sign-off
    business = people["business"]
    first = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=w.versions[0], deployment_name="churn"
    )
    # asked again for the same version and endpoint (e.g. after reloading the form): same sign-off
    again = deployments.request_deployment(
        db, actor=people["data_scientist"], model_version_id=w.versions[0], deployment_name="churn"
    )
    assert first.signoff_id and again.signoff_id == first.signoff_id
    assert _unread_signoff_items(db, business.username) == 1
    assert [p.id for p in collab.pending_for(db, actor=business)] == [first.signoff_id]

    deployments.deploy(db, actor=people["admin"], request_id=first.id, override_reason="pilot for one week")

    assert collab.get_signoff(db, first.signoff_id).status == "withdrawn"
    assert collab.pending_for(db, actor=business) == []  # no inbox offers "Approve" any more
    assert _unread_signoff_items(db, business.username) == 0
    # the duplicate request for the version now served is settled too, not left waiting for a sign-off
    assert deployments.get_request(db, again.id).status != "pending"
