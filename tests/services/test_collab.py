"""Comments with @mentions, the inbox, and sign-offs, on any entity, on SQLite and Postgres."""

import pytest

from mlops_core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mlops_core.services import audit, collab


def test_a_mention_reaches_the_inbox_of_the_person_mentioned_only(db, people):
    c = collab.add_comment(
        db,
        actor=people["data_scientist"],
        entity_type="use_case",
        entity_id=7,
        body="@alice can we use last year's data? cc @omar, mail bob@example.com",
    )
    assert c.mentions == ["alice", "omar"]
    alice = collab.inbox(db, actor=people["business"])
    assert alice.unread == 1 and alice.items[0].kind == "mention"
    assert alice.items[0].title.startswith("sara mentioned you") and alice.items[0].entity_id == "7"
    assert collab.unread_count(db, actor=people["ops"]) == 1
    assert collab.unread_count(db, actor=people["data_engineer"]) == 0
    assert collab.unread_count(db, actor=people["data_scientist"]) == 0


def test_unknown_mentions_are_reported_back_and_notify_nobody(db, people):
    c = collab.add_comment(db, actor=people["business"], entity_type="dataset", entity_id="3", body="hey @mallory")
    assert c.mentions == [] and c.unknown_mentions == ["mallory"]


def test_mentioning_yourself_does_not_fill_your_own_inbox(db, people):
    collab.add_comment(db, actor=people["business"], entity_type="use_case", entity_id=1, body="note to @alice")
    assert collab.unread_count(db, actor=people["business"]) == 0


def test_replies_are_threaded_under_their_comment(db, people):
    a = collab.add_comment(db, actor=people["business"], entity_type="use_case", entity_id=1, body="first")
    b = collab.add_comment(db, actor=people["ops"], entity_type="use_case", entity_id=1, body="second")
    collab.add_comment(
        db, actor=people["data_scientist"], entity_type="use_case", entity_id=1, body="re first", parent_id=a.id
    )
    collab.add_comment(db, actor=people["business"], entity_type="run", entity_id=1, body="other entity")
    thread = collab.list_comments(db, entity_type="use_case", entity_id=1)
    assert [(c.body, c.depth) for c in thread] == [("first", 0), ("re first", 1), ("second", 0)]
    assert b.id in {c.id for c in thread}
    assert collab.count_comments(db, entity_type="run", entity_id=1) == 1


def test_many_discussions_are_read_in_one_query_each_threaded_like_list_comments(db, people):
    from sqlalchemy import event

    a = collab.add_comment(db, actor=people["business"], entity_type="alert", entity_id=1, body="first")
    collab.add_comment(db, actor=people["ops"], entity_type="alert", entity_id=2, body="on two")
    collab.add_comment(
        db, actor=people["data_scientist"], entity_type="alert", entity_id=1, body="re first", parent_id=a.id
    )
    collab.add_comment(db, actor=people["ops"], entity_type="alert", entity_id=1, body="second")
    collab.add_comment(db, actor=people["ops"], entity_type="run", entity_id=1, body="another entity type")
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        many = collab.list_comments_many(db, entity_type="alert", entity_ids=[1, 2, 3, 1])
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len([x for x in statements if x.lstrip().upper().startswith("SELECT")]) == 1
    assert list(many) == ["1", "2", "3"]
    assert [(c.body, c.depth) for c in many["1"]] == [("first", 0), ("re first", 1), ("second", 0)]
    assert [c.body for c in many["2"]] == ["on two"] and many["3"] == []
    for eid in ("1", "2", "3"):
        assert [(c.id, c.depth) for c in many[eid]] == [
            (c.id, c.depth) for c in collab.list_comments(db, entity_type="alert", entity_id=eid)
        ]
    assert collab.list_comments_many(db, entity_type="alert", entity_ids=[]) == {}


def test_a_reply_to_a_comment_of_another_entity_is_refused(db, people):
    a = collab.add_comment(db, actor=people["business"], entity_type="use_case", entity_id=1, body="first")
    with pytest.raises(NotFound, match="to reply to"):
        collab.add_comment(db, actor=people["ops"], entity_type="use_case", entity_id=2, body="x", parent_id=a.id)


def test_an_empty_comment_is_refused(db, people):
    with pytest.raises(ValidationError, match="empty"):
        collab.add_comment(db, actor=people["ops"], entity_type="use_case", entity_id=1, body="   ")


def test_everyone_may_comment_and_each_comment_is_audited(db, people):
    for role in ("business", "data_engineer", "data_scientist", "ops", "admin"):
        collab.add_comment(db, actor=people[role], entity_type="use_case", entity_id=1, body="hello")
    events = audit.list_events(db, actor=people["ops"], action="comment.add").events
    assert sorted(e.actor_username for e in events) == ["admin", "alice", "dan", "omar", "sara"]
    assert {e.entity_type for e in events} == {"use_case"}


def test_marking_read_clears_only_my_items(db, people):
    collab.add_comment(db, actor=people["ops"], entity_type="use_case", entity_id=1, body="@alice @sara look")
    assert collab.mark_read(db, actor=people["business"]) == 1
    assert collab.unread_count(db, actor=people["business"]) == 0
    assert collab.unread_count(db, actor=people["data_scientist"]) == 1
    assert collab.inbox(db, actor=people["business"], unread_only=True).total == 0
    assert collab.inbox(db, actor=people["business"]).total == 1


def test_notify_by_role_adds_one_item_per_active_person_in_the_callers_transaction(db, people):
    with db.unit_of_work() as s:
        n = collab.notify(
            s,
            roles=["ops"],
            usernames=["omar", "dan"],
            kind="alert",
            title="drift on churn",
            entity_type="deployment",
            entity_id=3,
        )
    assert n == 2
    assert collab.inbox(db, actor=people["ops"]).items[0].title == "drift on churn"


def _request(db, people, **kw):
    args = dict(
        entity_type="use_case",
        entity_id=1,
        title="Approve the churn KPIs",
        assignee_username="admin",
        evidence={"kpis": ["recall >= 0.75"], "version": 3},
    )
    args.update(kw)
    return collab.request_signoff(db, actor=people["business"], **args)


def test_a_signoff_request_stores_the_evidence_and_its_hash_and_reaches_the_assignee(db, people):
    so = _request(db, people)
    assert so.status == "pending" and so.evidence == {"kpis": ["recall >= 0.75"], "version": 3}
    assert so.evidence_hash == collab.evidence_hash({"version": 3, "kpis": ["recall >= 0.75"]})
    assert so.evidence_hash != collab.evidence_hash({"kpis": ["recall >= 0.80"], "version": 3})
    item = collab.inbox(db, actor=people["admin"]).items[0]
    assert item.kind == "signoff" and "Approve the churn KPIs" in item.title
    assert [p.id for p in collab.pending_for(db, actor=people["admin"])] == [so.id]


def test_approving_records_who_why_and_tells_the_requester(db, people):
    so = _request(db, people)
    done = collab.decide_signoff(db, actor=people["admin"], signoff_id=so.id, approve=True, reason="KPIs agreed")
    assert (done.status, done.decided_by, done.reason) == ("approved", "admin", "KPIs agreed")
    assert done.decided_at is not None
    assert collab.inbox(db, actor=people["business"]).items[0].kind == "signoff_decided"
    assert collab.pending_for(db, actor=people["admin"]) == []
    ev = audit.list_events(db, actor=people["admin"], action="signoff.approve").events[0]
    assert ev.after["status"] == "approved"


def test_a_rejection_needs_a_reason_and_history_keeps_every_request(db, people):
    first = _request(db, people)
    with pytest.raises(ValidationError, match="reason is required"):
        collab.decide_signoff(db, actor=people["admin"], signoff_id=first.id, approve=False, reason=" ")
    collab.decide_signoff(db, actor=people["admin"], signoff_id=first.id, approve=False, reason="targets too low")
    second = _request(db, people, evidence={"kpis": ["recall >= 0.80"]})
    collab.decide_signoff(db, actor=people["admin"], signoff_id=second.id, approve=True)
    hist = collab.signoffs_for(db, "use_case", 1)
    assert [(h.id, h.status) for h in hist] == [(second.id, "approved"), (first.id, "rejected")]
    assert hist[1].reason == "targets too low"


def test_a_decided_signoff_cannot_be_decided_again(db, people):
    so = _request(db, people)
    collab.decide_signoff(db, actor=people["admin"], signoff_id=so.id, approve=True)
    with pytest.raises(Conflict, match="already approved by admin"):
        collab.decide_signoff(db, actor=people["admin"], signoff_id=so.id, approve=False, reason="changed my mind")


def test_only_the_person_or_role_asked_may_decide_and_never_the_requester(db, people):
    by_person = _request(db, people, assignee_username="omar")
    with pytest.raises(PermissionDenied, match="it is for omar"):
        collab.decide_signoff(db, actor=people["data_scientist"], signoff_id=by_person.id, approve=True)
    by_role = collab.request_signoff(
        db,
        actor=people["data_scientist"],
        entity_type="model_version",
        entity_id=4,
        title="Ship v4",
        assignee_role="business",
        evidence={},
    )
    with pytest.raises(PermissionDenied, match="requested this sign-off"):
        collab.decide_signoff(db, actor=people["data_scientist"], signoff_id=by_role.id, approve=True)
    with pytest.raises(PermissionDenied, match="role business"):
        collab.decide_signoff(db, actor=people["ops"], signoff_id=by_role.id, approve=True)
    assert collab.decide_signoff(db, actor=people["business"], signoff_id=by_role.id, approve=True).status == "approved"
    assert collab.inbox(db, actor=people["business"]).items[-1].kind == "signoff"


def test_a_signoff_needs_exactly_one_assignee_who_exists(db, people):
    with pytest.raises(ValidationError, match="exactly one person or one role"):
        _request(db, people, assignee_username=None)
    with pytest.raises(ValidationError, match="exactly one person or one role"):
        _request(db, people, assignee_role="ops")
    with pytest.raises(ValidationError, match="no active user 'mallory'"):
        _request(db, people, assignee_username="mallory")
    with pytest.raises(ValidationError, match="unknown role"):
        _request(db, people, assignee_username=None, assignee_role="boss")


def test_asking_the_same_pending_signoff_twice_does_not_ask_twice(db, people):
    first = _request(db, people)
    again = _request(db, people)
    assert again.id == first.id
    assert collab.inbox(db, actor=people["admin"]).total == 1
    changed = _request(db, people, evidence={"kpis": ["recall >= 0.80"]})
    assert changed.id != first.id
