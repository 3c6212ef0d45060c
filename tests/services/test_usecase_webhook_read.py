"""Reading a use case's chat webhook (issue 18): its URL is a credential, shown only to those who may set it."""

from mlops_core.services import subscriptions, usecases


def test_the_use_case_webhook_url_is_shown_only_to_those_who_may_set_it(db, people):
    uc = usecases.create_use_case(db, actor=people["business"], title="Churn")
    assert subscriptions.get_use_case_webhook(db, actor=people["business"], use_case_id=uc.id) is None
    subscriptions.set_use_case_webhook(
        db, actor=people["ops"], use_case_id=uc.id, url="https://hooks.example.com/x", flavor="teams"
    )
    got = subscriptions.get_use_case_webhook(db, actor=people["business"], use_case_id=uc.id)
    assert got == {"url": "https://hooks.example.com/x", "flavor": "teams"}
    hidden = subscriptions.get_use_case_webhook(db, actor=people["data_scientist"], use_case_id=uc.id)
    assert hidden == {"url": "", "flavor": "teams"}
