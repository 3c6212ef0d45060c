"""Finding: markdown written by one user (a comment, a problem statement) loaded remote images in every reader's
browser (which called a listener, sending the page address as Referer) and kept javascript:/data: links.
Attacker: any account that may write text. What a user notices afterwards: the text reads the same, but no
image loads and no such link is clickable, on every element of the page."""

import pytest
from markdown_it import MarkdownIt

from mlops_core.services import collab, usecases
from tests.conftest import make_people
from tests.pages.helpers import app_as, no_exceptions

LEAK = "http://127.0.0.1:9/leak"
ATTACK = (
    f"Hello ![x]({LEAK}) and [click](javascript:alert(1)) and [d](data:text/html,<b>x</b>) "
    f"and ![r][pix] and <img src=\"{LEAK}\"> and <javascript:alert(2)>\n\n[pix]: {LEAK}"
)

# Streamlit renders markdown as CommonMark with GFM (tables, strikethrough) and no raw HTML.
_md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# markdown-it itself refuses javascript:/data: links; a browser-side renderer may not, so the check does not.
_md.validateLink = lambda url: True


def _walk(tokens):
    for t in tokens:
        yield t
        yield from _walk(t.children or [])


def rendered_markdown(at) -> list[str]:
    """The markdown source of every element a reader's browser renders as markdown on the page."""
    out = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "info",
        "success",
        "warning",
        "error",
        "exception",
    ):
        for el in getattr(at, kind):
            out.append(str(getattr(el, "value", "")))
    for kind in ("expander", "tabs", "status"):
        for el in getattr(at, kind, []):
            out.append(str(getattr(el, "label", "")))
    return out


def assert_no_image_or_unsafe_link(at) -> None:
    sources = rendered_markdown(at)
    for src in sources:
        tokens = list(_walk(_md.parse(src)))
        images = [t.attrs.get("src") for t in tokens if t.type == "image"]
        html = [t.content for t in tokens if t.type in ("html_inline", "html_block")]
        bad = [
            t.attrs.get("href")
            for t in tokens
            if t.type == "link_open"
            and not str(t.attrs.get("href")).lower().startswith(("http://", "https://", "mailto:"))
        ]
        assert not images and not html and not bad, (src, images, html, bad)


@pytest.fixture
def people(sqlite_db):
    return make_people(sqlite_db)


def test_a_use_case_and_its_comment_with_image_and_script_links_render_without_them(people, sqlite_db):
    uc = usecases.create_use_case(
        db := sqlite_db, actor=people["business"], title="Churn", problem_statement=ATTACK, objectives=ATTACK
    )
    collab.add_comment(db, actor=people["data_scientist"], entity_type="use_case", entity_id=uc.id, body=ATTACK)
    signoff = collab.request_signoff(
        db,
        actor=people["business"],
        entity_type="use_case",
        entity_id=uc.id,
        title="Go live",
        assignee_username="sara",
        evidence={},
    )
    collab.decide_signoff(db, actor=people["data_scientist"], signoff_id=signoff.id, approve=False, reason=ATTACK)

    at = app_as(people["ops"], page="pages/use_case.py")
    no_exceptions(at)
    sources = rendered_markdown(at)
    # The attack text was rendered (problem statement, objectives, comment, sign-off reason) ...
    assert sum("Hello" in s for s in sources) >= 4, sources
    assert any("click" in s for s in sources)
    # ... but no element holds an image, raw HTML, or a link that is not http(s)/mailto.
    assert_no_image_or_unsafe_link(at)
    assert not any(LEAK in s and "](" in s.split(LEAK)[0][-3:] for s in sources)


def test_the_check_finds_the_image_and_links_in_the_text_as_written():
    """The check above can fail: the raw attack text, as pages rendered it before, holds the image and links."""
    tokens = list(_walk(_md.parse(ATTACK)))
    assert [t.attrs["src"] for t in tokens if t.type == "image"] == [LEAK, LEAK]
    assert any(t.type == "html_inline" for t in tokens)
    hrefs = [t.attrs["href"] for t in tokens if t.type == "link_open"]
    assert any(h.startswith("javascript:") for h in hrefs) and any(h.startswith("data:") for h in hrefs)
