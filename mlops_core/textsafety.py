"""Make user-written text safe to hand to Streamlit's markdown renderer.

Anyone with an account writes text other people read: comments, problem statements, objectives, model cards,
notes, titles. Rendered as markdown as written, `![x](https://attacker/pixel)` makes every reader's browser
call the attacker (sending the page address as Referer), and `[click](javascript:...)` or `data:` links put
script one click away. Streamlit escapes raw HTML (we never pass unsafe_allow_html with user text), so what is
left is markdown itself.

`safe_markdown` parses the text with markdown-it-py (CommonMark, plus GFM tables and strikethrough, which
Streamlit renders too) and writes it back as markdown made only of constructs it emitted itself: images become
their alt text (or "[image removed]"), links survive only with an absolute http(s) or mailto address (others
become their text), raw HTML is shown as text (an <img> tag as "[image removed]"), and every piece of text is
backslash-escaped so nothing in it can form markup Streamlit would read differently from markdown-it
(reference definitions, autolinks, :color[...] directives, $math$). Re-rendering from the parse tree rather
than filtering the source with regular expressions is what makes the tricks (reference-style images, nested
brackets, entities like `javascript&#58;`, `JaVaScRiPt:`, `java\\tscript:`) harmless: the parser resolves
them first and we judge the result.

`plain_markdown` is for text that must read literally, e.g. a title inside our own `**...**`.
Pure functions; no Streamlit import (mlops_core stays UI-free).
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

IMAGE_REMOVED = "[image removed]"

# Only these link targets stay clickable; relative and protocol-relative addresses, data:, javascript:,
# vbscript:, file: and anything else become plain text.
_ALLOWED_LINK = re.compile(r"^(?:https?://[^\s]+|mailto:[^\s]+)$", re.IGNORECASE)

# Characters that can start markup anywhere in a line are backslash-escaped (CommonMark allows escaping any
# ASCII punctuation): [ ] open links and images; ` * ~ | $ \\ open code, emphasis, strikethrough, tables,
# math and escapes. Others are escaped only where they act: `<` before a letter, / ! or ? (a tag or an
# autolink), `_` when it is not inside a word (snake_case stays as typed), `&` when it would form an entity,
# and # - + > = and "1." at a line start.
# Escaping keeps a punctuation character next to an emphasis delimiter, so `*(note)*` keeps its emphasis.
_ALWAYS = set("[]`*~|$\\")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_LINE_START = re.compile(r"^([ \t]*)(?:([#>+=-])|(\d{1,9})([.)]))", re.MULTILINE)
_BARE_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,:;!?*_~'\")]"
_IMG_TAG = re.compile(r"<\s*img\b[^>]*>?", re.IGNORECASE)

_parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def plain_markdown(text: object, *, line_start: bool = True) -> str:
    """`text` escaped so Streamlit shows it character for character: no formatting, no link, no image.
    `line_start=False` when the text continues a line (its first character cannot open a block)."""
    s = str(text if text is not None else "")
    out = []
    for i, c in enumerate(s):
        if c in _ALWAYS:
            out.append("\\" + c)
        elif c == "_" and not (0 < i < len(s) - 1 and s[i - 1].isalnum() and s[i + 1].isalnum()):
            out.append("\\_")
        elif c == "<" and (i == len(s) - 1 or s[i + 1].isalpha() or s[i + 1] in "/!?"):
            out.append("\\<")  # could open a tag or an autolink; "a <= b" and "3 < 4" stay as typed
        elif c == "&" and _ENTITY.match(s, i):
            out.append("\\&")
        else:
            out.append(c)
    escaped = "".join(out)

    def block_start(m: re.Match) -> str:
        if not line_start and m.start() == 0:
            return m.group(0)
        if m.group(2):
            return m.group(1) + "\\" + m.group(2)
        return m.group(1) + m.group(3) + "\\" + m.group(4)

    return _LINE_START.sub(block_start, escaped)


def code_span(text: object) -> str:
    """`text` as inline code that no backtick in it can close early (a user value shown in `...`)."""
    code = str(text if text is not None else "").replace("\n", " ")
    ticks = "`" * (_longest_run(code, "`") + 1)
    pad = " " if code.strip(" ") and (code[0] == "`" or code[-1] == "`" or code[0] == code[-1] == " ") else ""
    # CommonMark strips one space at each end when both ends have one (and it is not all spaces)
    return f"{ticks}{pad}{code}{pad}{ticks}"


def is_allowed_link(href: str) -> bool:
    """True for absolute http(s) and mailto addresses only (after markdown-it resolved escapes/entities)."""
    return bool(href) and bool(_ALLOWED_LINK.match(href))


def safe_markdown(text: object) -> str:
    """`text` as markdown with its formatting kept but no image, no non-http(s)/mailto link, no raw HTML."""
    if text is None:
        return ""
    tree = SyntaxTreeNode(_parser.parse(str(text)))
    return _blocks(tree.children, tight=False).strip("\n")


# --- block level --------------------------------------------------------------------------------------------


def _blocks(nodes, *, tight: bool) -> str:
    out = [_block(n) for n in nodes]
    return ("\n" if tight else "\n\n").join(s for s in out if s != "")


def _prefix(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    return "\n".join(
        (first if i == 0 else rest) + line if line or i == 0 else rest.rstrip() for i, line in enumerate(lines)
    )


def _block(node) -> str:
    t = node.type
    if t == "paragraph":
        return _inline_of(node)
    if t == "heading":
        return "#" * int(node.tag[1]) + " " + _inline_of(node).replace("\n", " ")
    if t == "blockquote":
        return _prefix(_blocks(node.children, tight=False), "> ", "> ")
    if t in ("bullet_list", "ordered_list"):
        tight = all(
            getattr(p, "hidden", False) for item in node.children for p in item.children if p.type == "paragraph"
        )
        start = int(node.attrs.get("start", 1) or 1) if t == "ordered_list" else 0
        items = []
        for i, item in enumerate(node.children):
            marker = f"{start + i}. " if t == "ordered_list" else "- "
            body = _blocks(item.children, tight=tight) or ""
            items.append(_prefix(body, marker, " " * len(marker)))
        return ("\n" if tight else "\n\n").join(items)
    if t in ("fence", "code_block"):
        code = node.content if node.content.endswith("\n") or not node.content else node.content + "\n"
        fence = "`" * max(3, _longest_run(code, "`") + 1)
        lang = re.sub(r"[^A-Za-z0-9_+-]", "", (node.info or "").split(" ")[0]) if t == "fence" else ""
        return f"{fence}{lang}\n{code}{fence}"
    if t == "hr":
        return "***"
    if t == "html_block":
        return "\n".join(_html_as_text(line.strip()) for line in node.content.strip().split("\n"))
    if t == "table":
        return _table(node)
    # Anything else (a future extension): its text only.
    return plain_markdown(node.content or "")


def _table(node) -> str:
    rows, aligns = [], []
    for section in node.children:
        for tr in section.children:
            cells = [_inline_of(c).replace("\n", " ") for c in tr.children]
            if section.type == "thead":
                style = [(c.attrs.get("style") or "") for c in tr.children]
                aligns = [
                    ":-:" if "center" in s else ":--" if "left" in s else "--:" if "right" in s else "---"
                    for s in style
                ]
            rows.append("| " + " | ".join(cells) + " |")
    if not rows:
        return ""
    return "\n".join([rows[0], "| " + " | ".join(aligns) + " |", *rows[1:]])


# --- inline level -------------------------------------------------------------------------------------------


def _inline_of(node) -> str:
    inline = [c for c in node.children if c.type == "inline"]
    return "".join(_inline(c.children) for c in inline)


def _inline(nodes, in_link: bool = False) -> str:
    parts, line_start = [], True
    for n in nodes:
        parts.append(_one(n, in_link, line_start))
        line_start = n.type in ("softbreak", "hardbreak")
    return _join(parts)


def _join(parts: list[str]) -> str:
    """Concatenate rendered pieces; a text's last "!" before a link we emit is escaped, else `![...](...)`
    would turn that link into an image (`\\![x](https://pixel)` parses as "!" + link)."""
    out = ""
    for p in parts:
        body = out[:-1]
        if p.startswith("[") and out.endswith("!") and (len(body) - len(body.rstrip("\\"))) % 2 == 0:
            out = body + "\\!"
        out += p
    return out


def _one(node, in_link: bool = False, line_start: bool = False) -> str:
    t = node.type
    if t == "text":
        return plain_markdown(node.content, line_start=line_start) if in_link else _text(node.content, line_start)
    if t == "softbreak":
        return "\n"
    if t == "hardbreak":
        return "\\\n"
    if t == "em":
        return "*" + _inline(node.children, in_link) + "*"
    if t == "strong":
        return "**" + _inline(node.children, in_link) + "**"
    if t == "s":
        return "~~" + _inline(node.children, in_link) + "~~"
    if t == "code_inline":
        return code_span(node.content)
    if t == "image":
        alt = _alt_text(node)
        return plain_markdown(alt) if alt.strip() else plain_markdown(IMAGE_REMOVED)
    if t == "link":
        href = str(node.attrs.get("href") or "")
        if not in_link and is_allowed_link(href):
            inner = _inline(node.children, in_link=True)
            if inner.strip():
                return f"[{inner}](<{_encode_href(href)}>)"
        return _inline(node.children, in_link)
    if t == "html_inline":
        return _html_as_text(node.content)
    return plain_markdown(node.content or "")


def _alt_text(node) -> str:
    parts = []
    for c in node.children or []:
        parts.append(c.content if c.type in ("text", "code_inline") else _alt_text(c))
    return "".join(parts) or (node.content or "")


def _text(s: str, line_start: bool = False) -> str:
    """Plain text, escaped, with bare http(s) URLs turned into explicit links (Streamlit's GFM would link them,
    and the escaping would break that)."""
    out, pos = [], 0
    for m in _BARE_URL.finditer(s):
        url = _trim_url(m.group(0))
        if not url or len(url) <= len("https://") or not is_allowed_link(url):
            continue
        out.append(plain_markdown(s[pos : m.start()], line_start=line_start and pos == 0))
        out.append(f"[{plain_markdown(url, line_start=False)}](<{_encode_href(_parser.normalizeLink(url))}>)")
        pos = m.start() + len(url)
    out.append(plain_markdown(s[pos:], line_start=line_start and pos == 0))
    return _join(out)


def _trim_url(url: str) -> str:
    """Drop sentence punctuation after a bare URL, the way GFM does: a closing parenthesis stays when the URL
    opened one (https://en.wikipedia.org/wiki/Go_(game))."""
    while url and url[-1] in _TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def _encode_href(href: str) -> str:
    # Inside <...> a destination may not hold <, > or a line break; markdown-it already percent-encoded most.
    # "&" is backslash-escaped: the reader's parser decodes entities in destinations (&#58; would become ":").
    return "".join(f"%{ord(c):02X}" if c in "<>\\ \t\r\n" else "\\&" if c == "&" else c for c in href)


def _html_as_text(html: str) -> str:
    """Raw HTML shown as the text it is (Streamlit would escape it anyway), an <img> tag as "[image removed]"."""
    pieces = []
    for i, part in enumerate(_IMG_TAG.split(html)):
        if i:
            pieces.append(plain_markdown(IMAGE_REMOVED))
        pieces.append(_text(part, line_start=i == 0))
    return _join(pieces)


def _longest_run(s: str, ch: str) -> int:
    runs = re.findall(re.escape(ch) + "+", s)
    return max((len(r) for r in runs), default=0)
