"""Portfolio: the use case cards side by side are the same height (issue 15). Each row of cards is one row of
columns and every card stretches to its row, so a bare proposal's card is as tall as a monitored one's."""

from mlops_core.services import usecases
from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions


def _cards(at):
    """(title, block proto, which row of columns) for every bordered card on the page."""
    out = []
    for row_no, row in enumerate(at.main.children.values()):
        for column in getattr(row, "children", {}).values() if getattr(row, "type", None) == "flex_container" else ():
            for block in getattr(column, "children", {}).values():
                proto = getattr(block, "proto", None)
                if getattr(block, "type", None) == "flex_container" and proto.flex_container.border:
                    links = [e for e in block.children.values() if getattr(e, "type", None) == "page_link"]
                    out.append((links[0].proto.label, proto, row_no))
    return out


def test_cards_in_a_row_stretch_to_the_same_height(sqlite_db):
    people = make_people(sqlite_db)
    alice = people["business"]
    bare = usecases.create_use_case(sqlite_db, actor=alice, title="Invoice triage")
    rich = usecases.create_use_case(sqlite_db, actor=alice, title="Customer churn", tags=["retention", "b2c"])
    usecases.add_kpi(sqlite_db, actor=alice, use_case_id=rich.id, kind="model", metric="recall", target=0.75)
    usecases.add_kpi(sqlite_db, actor=alice, use_case_id=rich.id, kind="model", metric="roc_auc", target=0.8)
    usecases.transition_use_case(sqlite_db, actor=alice, use_case_id=rich.id, to_status="approved")
    at = app_as(alice, "pages/portfolio.py")
    no_exceptions(at)
    cards = {title: (proto, row) for title, proto, row in _cards(at)}
    assert set(cards) == {bare.title, rich.title}, cards.keys()
    assert cards[bare.title][1] == cards[rich.title][1]  # side by side: one row of columns
    for title, (proto, _row) in cards.items():
        assert proto.height_config.use_stretch, title  # as tall as the tallest card of the row
