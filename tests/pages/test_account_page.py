"""My account: each personal access token shows when it expires (or when it was revoked), with a Revoke button."""

import pytest

from mlops_core.services import users
from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions, texts


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


def test_my_account_shows_each_token_expiry_and_revoking_one_says_when(sqlite_db, people):
    sara = people["data_scientist"]
    users.create_token(sqlite_db, actor=sara, username="sara", name="notebook")
    users.create_token(sqlite_db, actor=sara, username="sara", name="ci")
    tokens = {t.name: t for t in users.list_tokens(sqlite_db, actor=sara, username="sara")}
    at = app_as(sara, "pages/account.py")
    no_exceptions(at)
    assert texts(at).count("expires ") == 2
    assert f"{tokens['ci'].expires_at:%Y-%m-%d}" in texts(at)
    revoke = [b for b in at.button if b.label == "Revoke"]
    assert len(revoke) == 2
    revoke[0].click()
    at.run()
    no_exceptions(at)
    assert texts(at).count("expires ") == 1 and "revoked " in texts(at)
    assert len([b for b in at.button if b.label == "Revoke"]) == 1
