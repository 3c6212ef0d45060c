"""Use case page, Overview: the Team lists each person once (issue 15: alice, the owner and also a business
member, was listed twice)."""

import re

from mlops_core.services import usecases
from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions


def test_the_team_lists_the_owner_once_and_a_two_role_member_on_one_line(sqlite_db):
    people = make_people(sqlite_db)
    usecases.create_use_case(
        sqlite_db,
        actor=people["business"],
        title="Customer churn",
        members={"business": ["alice"], "data_engineer": ["dan"], "data_scientist": ["sara"], "ops": ["sara"]},
    )
    at = app_as(people["ops"], page="pages/use_case.py")
    no_exceptions(at)
    lines = [m.value for m in at.markdown if m.value.startswith("- **")]
    assert len(lines) == 3, lines
    assert [re.match(r"- \*\*(\w+)\*\*", line).group(1) for line in lines] == ["alice", "dan", "sara"]
    assert lines[0] == "- **alice** (Alice) — business owner"
    assert lines[2] == "- **sara** (Sara) — data scientist, ops"
