"""A use case's team lists each person once (issue 15: alice, owner and business member, showed twice)."""

from mlops_core.services import usecases


def test_the_team_lists_the_owner_once_and_each_person_once_with_all_their_roles(db, people):
    uc = usecases.create_use_case(
        db,
        actor=people["business"],
        title="Customer churn",
        # as the demo has it: the owner is also a business member; sara holds two roles
        members={"business": ["alice"], "data_scientist": ["sara"], "ops": ["omar", "sara"]},
    )
    team = usecases.team(usecases.get_use_case(db, use_case_id=uc.id))
    assert [p.username for p in team] == ["alice", "sara", "omar"]
    by_name = {p.username: p for p in team}
    assert by_name["alice"].roles == ("business owner",)
    assert by_name["alice"].display_name == "Alice"  # known from the membership
    assert by_name["sara"].roles == ("data scientist", "ops")
    assert by_name["omar"].roles == ("ops",) and by_name["omar"].display_name == "Omar"


def test_an_owner_who_is_not_a_member_and_another_business_member_are_both_listed(db, people):
    uc = usecases.create_use_case(db, actor=people["business"], title="Invoice triage", members={"business": ["dan"]})
    team = usecases.team(usecases.get_use_case(db, use_case_id=uc.id))
    assert [(p.username, p.display_name, p.roles) for p in team] == [
        ("alice", None, ("business owner",)),
        ("dan", "Dan", ("business",)),
    ]
