"""User-written markdown loses images, raw HTML and every link that is not http(s)/mailto, and keeps its
formatting. The output is checked by parsing it again (with GFM tables and strikethrough, as Streamlit renders)
and looking at what a browser would get: image tokens, link targets, HTML."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from mlops_core.textsafety import IMAGE_REMOVED, is_allowed_link, plain_markdown, safe_markdown

_md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# markdown-it itself refuses javascript:/data: links; a browser-side renderer may not, so the check does not.
_md.validateLink = lambda url: True


def _walk(tokens):
    for t in tokens:
        yield t
        yield from _walk(t.children or [])


def rendered(markdown: str) -> dict:
    """What a reader's browser receives: images (src), links (href), raw HTML pieces."""
    tokens = list(_walk(_md.parse(markdown)))
    return {
        "images": [t.attrs.get("src") for t in tokens if t.type == "image"],
        "links": [t.attrs.get("href") for t in tokens if t.type == "link_open"],
        "html": [t.content for t in tokens if t.type in ("html_inline", "html_block")],
        "html_out": _md.render(markdown),
    }


def assert_harmless(markdown: str) -> None:
    r = rendered(markdown)
    assert r["images"] == [], markdown
    assert r["html"] == [], markdown
    for href in r["links"]:
        assert href.lower().startswith(("http://", "https://", "mailto:")), (href, markdown)
    assert "<img" not in r["html_out"].lower(), markdown


ATTACKS = [
    "![x](http://127.0.0.1:9/leak)",
    "![](http://127.0.0.1:9/leak 'title')",
    "![a][ref]\n\n[ref]: http://127.0.0.1:9/leak",
    "![a]\n\n[a]: <http://127.0.0.1:9/leak>",
    "![ref]\n\n[ref]: http://127.0.0.1:9/leak",
    "[![inner](http://127.0.0.1:9/leak)](http://example.com)",
    "![outer [nested ![deep](http://127.0.0.1:9/a)]](http://127.0.0.1:9/b)",
    "\\![x](http://127.0.0.1:9/leak)",
    "!https://127.0.0.1:9/leak.png",
    "!<http://127.0.0.1:9/leak>",
    "<img src=http://127.0.0.1:9/leak>",
    "text <IMG SRC='http://127.0.0.1:9/leak' onerror=alert(1)> text",
    "<div>\n<img src=\"http://127.0.0.1:9/leak\">\n</div>",
    "<picture><source srcset=http://127.0.0.1:9/leak></picture>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](<java\tscript:alert(1)>)",
    "[click](<java\nscript:alert(1)>)",
    "[click](javascript&#58;alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click]( javascript:alert(1) )",
    "[click](vbscript:msgbox(1))",
    "[d](data:text/html,<script>alert(1)</script>)",
    "[d](DATA:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[f](file:///etc/passwd)",
    "[r](/pages/admin)",
    "[pr](//127.0.0.1:9/leak)",
    "<javascript:alert(1)>",
    "<JAVASCRIPT:alert(1)>",
    "<data:text/html,hi>",
    "[a][r]\n\n[r]: javascript:alert(1)",
    "[a]\n\n[a]: data:text/html,hi",
    "[a [b [c](javascript:alert(1))]](javascript:alert(2))",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<script>alert(1)</script>",
    "<iframe src=http://127.0.0.1:9/leak></iframe>",
    "- ![in a list](http://127.0.0.1:9/leak)\n  > ![in a quote](http://127.0.0.1:9/q)",
    "| a | b |\n|---|---|\n| ![x](http://127.0.0.1:9/t) | [j](javascript:x) |",
    "&lt;img src=http://127.0.0.1:9/leak&gt;",
    "&#33;[x](http://127.0.0.1:9/leak)",
    "`code` ![x](http://127.0.0.1:9/leak) `more`",
    "**bold ![x](http://127.0.0.1:9/leak) bold**",
    "# ![heading](http://127.0.0.1:9/h)",
    "[x](http://ok.example)![y](http://127.0.0.1:9/leak)",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_attack_string_renders_without_images_html_or_unsafe_links(attack):
    out = safe_markdown(attack)
    assert_harmless(out)
    assert "127.0.0.1:9/leak" not in "".join(rendered(out)["images"])
    assert safe_markdown(out) == out  # sanitising twice changes nothing: the output is stable markdown


def test_an_image_becomes_its_alt_text_or_a_note_that_it_was_removed():
    assert safe_markdown("see ![the chart](http://127.0.0.1:9/leak) here") == "see the chart here"
    assert IMAGE_REMOVED.strip("[]") in safe_markdown("![](http://127.0.0.1:9/leak)")
    assert IMAGE_REMOVED.strip("[]") in safe_markdown("a <img src=x> b")
    assert "127.0.0.1" not in safe_markdown("![](http://127.0.0.1:9/leak)")


def test_a_forbidden_link_keeps_its_words_but_is_not_clickable():
    out = safe_markdown("[click here](javascript:alert(1)) and [there](data:text/html,x)")
    assert rendered(out)["links"] == []
    assert "click here" in out


def test_ordinary_formatting_and_web_links_are_kept():
    text = (
        "# Goal\n\nCut **churn** by *two* points, see [the study](https://example.com/study?q=1#s) "
        "or mail [us](mailto:team@example.com).\n\n- first\n- `code`\n\n1. one\n2. two\n\n> quoted ~~old~~\n\n"
        "| KPI | target |\n|:--|--:|\n| recall | 0.8 |\n\n```python\nprint('hi')\n```"
    )
    out = safe_markdown(text)
    html = rendered(out)["html_out"]
    assert rendered(out)["links"] == ["https://example.com/study?q=1#s", "mailto:team@example.com"]
    for fragment in (
        "<h1>Goal</h1>",
        "<strong>churn</strong>",
        "<em>two</em>",
        "<li>first</li>",
        "<code>code</code>",
        "<ol>",
        "<blockquote>",
        "<s>old</s>",
        "<table>",
        "<td style=\"text-align:right\">0.8</td>",
        "print('hi')",
        'class="language-python"',
    ):
        assert fragment in html, (fragment, out)
    assert html == _md.render(text)  # nothing about ordinary text changed


def test_a_bare_web_address_stays_a_link_without_trailing_punctuation():
    out = safe_markdown("Details at https://en.wikipedia.org/wiki/Go_(game). Thanks")
    assert rendered(out)["links"] == ["https://en.wikipedia.org/wiki/Go_(game)"]
    assert rendered(out)["html_out"].rstrip().endswith(". Thanks</p>")


def test_text_that_looks_like_markup_reads_as_typed():
    for text in (
        "snake_case_name >= 0.8",
        "$5 and $10",
        "R&D: &amp; stays",
        "a < b",
        "1. not a list",
        "- not a list",
        "# not a heading",
        ":blue[not blue]",
        "*not emphasis*",
        "[not](a link)",
    ):
        out = plain_markdown(text)
        assert rendered(out)["links"] == [] and rendered(out)["images"] == []
        assert _text_of(out) == text, (text, out)


def _text_of(markdown: str) -> str:
    """The characters a reader sees (one paragraph, no markup expected)."""
    import html
    import re

    rendered_html = _md.render(markdown).strip()
    return html.unescape(re.sub(r"</?p>", "", rendered_html))


def test_names_with_underscores_and_comparisons_are_left_as_typed():
    assert plain_markdown("roc_auc >= 0.8. Great!") == "roc_auc >= 0.8. Great!"


def test_only_http_https_and_mailto_are_allowed_link_targets():
    assert is_allowed_link("https://example.com") and is_allowed_link("HTTP://example.com")
    assert is_allowed_link("mailto:a@example.com")
    for bad in ("javascript:alert(1)", "data:text/html,x", "/relative", "//host/x", "ftp://x", "", "java%09script:x"):
        assert not is_allowed_link(bad), bad


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            list("![]()<>:`*_~|$&#;\\/ \n\tahjptvsx.=-1'\"")
            + [
                "http://",
                "https://",
                "javascript:",
                "data:",
                "mailto:",
                "<img ",
                "![",
                "](",
                "[r]: ",
                "&#58;",
                "\n\n",
                "- ",
                "> ",
            ]
        ),
        max_size=30,
    ).map("".join)
)
def test_no_input_yields_an_image_html_or_unsafe_link(text):
    out = safe_markdown(text)
    assert_harmless(out)
    # Nested emphasis of one kind may re-render differently; what matters is that it stays harmless.
    assert_harmless(safe_markdown(out))
