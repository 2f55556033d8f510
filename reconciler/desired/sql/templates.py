"""SQL text into sqlglot's tokens: `$$NAME` template parameters, and SQL nested too deep to parse.

Owns the `$$NAME` parameters, read with the dialect's own tokenizer (never by text scanning: a `$$`
inside a string, a quoted name or a comment is no parameter), given to the parser as the dialect's
own parameter tokens and made template nodes in the tree; and refusing SQL nested more than
MAX_NESTING brackets deep before sqlglot's compiled parser recurses into it. Never parses a
statement: `parsing` does, with these tokens.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError, TokenError
from sqlglot.parser import Parser
from sqlglot.tokens import Token, TokenType

from .problems import TOO_DEEP, SqlProblem

# A `$$NAME` parameter in a parsed tree is a Var printing `$$NAME` (the stock generator writes a Var as
# it is) marked in its meta: sqlglot makes Vars of string literals too (DATE_TRUNC('$$X', d)).
_PARAMETER = "reconciler.parameter"


def template_parameter(name: str) -> exp.Var:
    """The node of the template parameter `$$name`."""
    node = exp.Var(this=f"$${name}")
    node.meta[_PARAMETER] = name
    return node


def parameter_name(node: exp.Expression) -> str | None:
    """NAME where `node` is the template parameter `$$NAME`, else None."""
    return node.meta.get(_PARAMETER) if isinstance(node, exp.Var) else None


def parameters_in(tree: exp.Expression) -> set[str]:
    """The names of the template parameters in `tree`."""
    return {name for node in tree.find_all(exp.Var) if (name := parameter_name(node)) is not None}


@functools.cache
def sqlglot_dialect(name: str) -> Dialect:
    return Dialect.get_or_raise(name)


@functools.cache
def _braced(dialect: str) -> bool:
    """Whether `dialect` reads `${name}` as one parameter (Hive, Spark): `$$NAME` then gets the braces, so
    that its parameter ends with them and never takes a `:` or a `}` of the SQL's own after it."""
    try:
        tree = sqlglot.parse_one("${name}", read=dialect)
    except SqlglotError:
        return False
    return isinstance(tree, exp.Parameter) and tree.this == exp.var("name") and not tree.args.get("expression")


def tokenize(text: str, dialect: str) -> tuple[list[Token], list[tuple[int, str]]]:
    """`text`'s tokens in `dialect`, each `$$NAME` as the tokens of the dialect's own parameter (`$name`,
    `${name}`) named `$$NAME`, which it parses wherever a parameter may stand; and (offset, NAME) of each."""
    read = sqlglot_dialect(dialect)
    starts = _parameter_starts(text, read) if "$$" in text else []
    masked = _blanked(text, starts)
    tokens = read.tokenize(masked)
    within_nesting(tokens, text)
    if not starts:
        return tokens, []
    following = {token.start: index for index, token in enumerate(tokens)}
    names = [following.get(start + 2) for start in starts]   # the index of the token naming each
    for start, index in zip(starts, names):
        name = tokens[index] if index is not None else None
        if name is None or masked[name.start:name.end + 1] != name.text or not (
                name.text.isascii() and name.text.isidentifier()):
            raise SqlProblem("`$$` must be followed directly by a parameter name (letters, digits and _)",
                             *line_column(text, start))
    written = [(start, tokens[index].text) for start, index in zip(starts, names)]
    for start, index in reversed(list(zip(starts, names))):   # from the end: indexes before stay valid
        tokens[index:index + 1] = _parameter_tokens(start, tokens[index], _braced(dialect))
    return tokens, written


def _parameter_tokens(start: int, name: Token, braced: bool) -> list[Token]:
    """The tokens standing for `$$NAME` at `start`, `name` the token of NAME: `$`, the name `$$NAME`, and
    braces around it where the dialect's parameter has them; each where its text is in the SQL."""
    def token(kind: TokenType, text: str, first: int, last: int, comments: list[str] | None = None) -> Token:
        return Token(kind, text, name.line, name.col - (name.end - last), first, last, comments)

    named = [token(TokenType.VAR, f"$${name.text}", start + 2, name.end, name.comments)]
    if braced:
        named = [token(TokenType.L_BRACE, "{", start + 1, start + 1), *named,
                 token(TokenType.R_BRACE, "}", name.end, name.end)]
    return [token(TokenType.PARAMETER, "$", start, start), *named]


def _parameter_starts(text: str, dialect: Dialect) -> list[int]:
    """Where each `$$NAME` starts: where a token starts, so never inside a string, a quoted name, a comment
    or a `$tag$` dollar-quoted string (a `$$` dollar quote gives way to parameters). The dialect's tokenizer
    is asked once per parameter: where `$` quotes, a `$$` opens a string running to the next `$$` (the
    one appended if no other), so only the tokens up to the first one are what the SQL says."""
    starts: list[int] = []
    while True:
        masked = _blanked(text, starts)
        tokenizer = dialect.tokenizer()
        try:
            tokens = tokenizer.tokenize(f"{masked}\n$$")
        except TokenError:
            tokens = tokenizer.tokens   # up to the SQL's own mistake, which the parse reports
        start = next((token.start for token in tokens
                      if token.start < len(text) and masked.startswith("$$", token.start)), None)
        if start is None:
            return starts
        starts.append(start)


def _blanked(text: str, starts: Sequence[int]) -> str:
    """`text` with the `$$` at each of `starts` made two spaces (every position stays where it was)."""
    for start in starts:
        text = f"{text[:start]}  {text[start + 2:]}"
    return text


def line_column(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


MAX_NESTING = 256   # brackets deep: SQL nested deeper is refused before sqlglot parses it
_OPENING = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE})
_CLOSING = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE})


def within_nesting(tokens: Sequence[Token], text: str) -> None:
    """Refuses SQL nested more than MAX_NESTING brackets deep (the `<` of a STRUCT, ARRAY, MAP ... type is
    one), at the first token beyond. sqlglot's compiled parser recurses on the C stack, and much of it
    without counting Python frames: nested some thousands deep it would crash, not raise RecursionError."""
    if sum(text.count(bracket) for bracket in "([{<") <= MAX_NESTING:
        return   # not so many brackets in all: the tokens need no walk
    depth = angles = 0
    previous = None
    for token in tokens:
        kind = token.token_type
        if kind in _OPENING or (kind == TokenType.LT and previous in Parser.NESTED_TYPE_TOKENS):
            depth, angles = depth + 1, angles + (kind == TokenType.LT)
            if depth > MAX_NESTING:
                raise SqlProblem(TOO_DEEP, token.line, token.col)
        elif kind in _CLOSING or (kind == TokenType.GT and angles):
            depth, angles = depth - 1, angles - (kind == TokenType.GT)
        previous = kind


def with_parameters(statement: exp.Expression) -> tuple[exp.Expression, list[str]]:
    """`statement` with the dialect's parameter nodes made from `$$NAME` turned into parameters, and their
    names."""
    found = [(node, name) for node in statement.walk() if (name := _parsed_parameter(node)) is not None]
    for node, name in found:
        if node is statement:
            statement = template_parameter(name)
        else:
            node.replace(template_parameter(name))
    return statement, [name for _, name in found]


def _parsed_parameter(node: exp.Expression) -> str | None:
    """NAME where `node` is what a dialect parses the tokens `tokenize` gives `$$NAME` into: a Placeholder
    (DuckDB) or a Parameter of the Var `$$NAME` and nothing else (one that took more is not, and the parse
    refuses it, as it does where the dialect's parser made something else of them)."""
    if isinstance(node, exp.Placeholder) and isinstance(node.this, str) and node.this.startswith("$$"):
        return node.this[2:]
    if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Var) and node.this.name.startswith("$$") \
            and not any(value for key, value in node.args.items() if key != "this"):
        return node.this.name[2:]
    return None
