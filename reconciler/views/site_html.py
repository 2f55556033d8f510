"""What every page of the landscape site shares: the frame (head, navigation, search box), where each
object's and run's page lives, escaping, and SQL highlighted by the engine dialect's own tokenizer.

Owns the markup common to the pages and the links between them. Takes finished values and returns
strings; never reads git or a tenant, and never lets a value from YAML, SQL or a tenant reach the page
unescaped.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from html import escape
from urllib.parse import quote

from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from ..desired.sql import SqlProblem
from ..desired.sql.templates import tokenize

STRINGS = (TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.RAW_STRING, TokenType.HEREDOC_STRING,
           TokenType.BYTE_STRING, TokenType.UNICODE_STRING)
NAMES = (TokenType.VAR, TokenType.IDENTIFIER)


_MARKUP = re.compile("[&<>\"']")


def h(text) -> str:
    """Any value as page text: escaped, quotes included (it may land in an attribute). Most are names
    with nothing to escape, found so by one scan instead of escape's five replacements."""
    text = text if isinstance(text, str) else str(text)
    return escape(text) if _MARKUP.search(text) else text


@functools.cache   # the same few addresses are written tens of thousands of times in a large site
def object_href(key, depth: int = 1) -> str:
    """The object's page from a page `depth` folders below the site's root (index.html is at 0)."""
    return "../" * depth + f"objects/{quote(str(key), safe='')}.html"


def run_href(run_id: str, depth: int = 1) -> str:
    return "../" * depth + f"runs/{quote(str(run_id), safe='')}.html"


def around_path(environment: str) -> str:
    """The environment's lineage page around any one object (site_assets/lineage.js draws it from the
    address's `object` and `levels`): one page an environment, not one an object and level."""
    return f"lineage/{quote(environment, safe='')}.html"


def lineage_href(environment: str, key, levels: int, depth: int = 1) -> str:
    return "../" * depth + f"{around_path(environment)}?object={quote(str(key), safe='')}&levels={levels}"


def drawn_in_browser(picture: dict, anchor: str, depth: int) -> str:
    """A picture (`drawing.picture`) as data that site_assets/lineage.js lays out with dagre into the
    element `anchor` when the page opens, `depth` folders below the root: a picture costs the site its
    data, not a layout. `<` is escaped so that no name can end the script element."""
    data = json.dumps(picture, separators=(",", ":")).replace("<", "\\u003c")
    up = "../" * depth
    return (f'<script type="application/json" class="picture" data-into="{h(anchor)}">{data}</script>'
            f'<script src="{up}assets/dagre.min.js"></script><script src="{up}assets/lineage.js"></script>'
            '<noscript><p class="empty">The picture is drawn by the page\'s script.</p></noscript>')


def shared_graph_href(environment: str, depth: int = 1) -> str:
    """The landscape's whole graph as a script (`drawing.shared`), which pictures drawn around an object use."""
    return "../" * depth + f"assets/lineage-{quote(environment, safe='')}.js"


def column_lineage_href(environment: str, depth: int = 1) -> str:
    """The landscape's column lineage as a script (`site_lineage.column_lineage`), which the lineage page
    around an object makes its table from."""
    return "../" * depth + f"assets/columns-{quote(environment, safe='')}.js"


def drawn_around(environment: str, key, levels: int, anchor: str, depth: int) -> str:
    """The picture of what is within `levels` of `key` in the environment's landscape, made by
    site_assets/lineage.js from the landscape's graph file (`shared_graph_href`) into `anchor`: the
    page holds the object's name, not the picture's boxes (`drawn_in_browser` for a picture of its own)."""
    data = json.dumps({"landscape": environment, "focus": str(key), "levels": levels}).replace("<", "\\u003c")
    up = "../" * depth
    return (f'<script type="application/json" class="picture" data-into="{h(anchor)}">{data}</script>'
            f'<script src="{h(shared_graph_href(environment, depth))}"></script>'
            f'<script src="{up}assets/dagre.min.js"></script><script src="{up}assets/lineage.js"></script>'
            '<noscript><p class="empty">The picture is drawn by the page\'s script.</p></noscript>')


@functools.lru_cache(maxsize=1 << 16)   # a column's link recurs on every page around it
def link(href: str, text) -> str:
    return f'<a href="{h(href)}">{h(text)}</a>'


def highlighted(text: str, dialect: str) -> str:
    """SQL as escaped HTML, its keywords, strings and numbers in spans (the dialect's tokenizer says which
    is which, `$$NAME` parameters read as validation reads them; the text between tokens, comments and
    spacing, as written). Text the tokenizer cannot read is shown plain."""
    try:
        tokens, _ = tokenize(text, dialect)
    except (SqlglotError, SqlProblem):
        return f"<pre class=\"sql\"><code>{h(text)}</code></pre>"
    pieces, position, read = [], 0, 0   # text before `position` is written; tokens before `read` are read
    for token in tokens:   # only the tokens drawn in a span break the text: the rest is escaped in runs
        start, end = token.start, token.end + 1
        if start < read:   # a token the tokenizer rebuilt (an escaped quote): keep the text as written
            continue
        read = end
        written = text[start:end]
        kind = ("s" if token.token_type in STRINGS else "n" if token.token_type == TokenType.NUMBER
                else "k" if token.token_type not in NAMES and written.replace("_", "").isalpha() else None)
        if kind:
            pieces.append(f'{h(text[position:start])}<span class="{kind}">{h(written)}</span>')
            position = end
    pieces.append(h(text[position:]))
    return f"<pre class=\"sql\"><code>{''.join(pieces)}</code></pre>"


def diff(before: str, after: str, before_label: str, after_label: str) -> str:
    """A unified diff of two texts as escaped HTML, added and removed lines marked."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), before_label, after_label, lineterm="", n=2)
    marked = [f'<span class="{"add" if line.startswith("+") else "del" if line.startswith("-") else "ctx"}">'
              f"{h(line)}</span>" for line in lines]
    return f"<pre class=\"diff\"><code>{chr(10).join(marked)}</code></pre>" if marked else ""


def table(headers: list[str], rows: list[list[str]], empty: str = "none") -> str:
    """A table of cells already escaped (each a fragment of HTML)."""
    if not rows:
        return f"<p class=\"empty\">{h(empty)}</p>"
    head = "".join(f'<th scope="col">{h(name)}</th>' for name in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str, depth: int, generated: str) -> str:
    """A whole page: the frame around `body` (escaped already), `depth` folders below the root."""
    up = "../" * depth
    return PAGE.format(title=h(title), body=body, up=up, generated=h(generated))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · reconciler</title><link rel="stylesheet" href="{up}assets/site.css"></head>
<body><a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="Site"><a href="{up}index.html">Landscape</a> <a href="{up}lineage.html">Lineage</a>
<a href="{up}pending.html">Pending</a> <a href="{up}runs.html">Runs</a></nav>
<form role="search" class="search" onsubmit="return false"><label for="search">Search objects and columns</label>
<input id="search" type="search" autocomplete="off" aria-controls="hits" data-root="{up}">
<ul id="hits" role="listbox" aria-label="Search results"></ul></form></header>
<main id="main"><h1>{title}</h1>
{body}</main>
<footer>Generated {generated} by reconciler site. Static files: no server, no network.</footer>
<script src="{up}assets/search.js"></script>
</body></html>
"""
