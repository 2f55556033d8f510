"""The `$$NAME` reading the reconciler had before issue 22, kept as an oracle for tests/test_templates.py.

It subclassed sqlglot's Tokenizer, Parser and Generator per dialect, which sqlglot's compiled build
(sqlglotc) refuses; so this file runs as its own process on the pure-Python sqlglot (its .py modules,
found before sqlglotc's extension modules beside them) and answers one JSON request a line on stdin:
{"sql", "dialect", "values"} -> {"parsed": false, "line", "column"} or {"parsed": true, "canonical",
"parameters", "rendered" (None where it cannot be)}. Never imported by the reconciler.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import sys


class SourceOnly(importlib.abc.MetaPathFinder):
    """Finds sqlglot's modules as their .py files, never the compiled ones installed beside them."""

    def find_spec(self, name, path=None, target=None):
        if name != "sqlglot" and not name.startswith("sqlglot."):
            return None
        loaders = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
        for entry in path or sys.path:
            spec = importlib.machinery.FileFinder(entry or ".", loaders).find_spec(name)
            if spec is not None and spec.loader is not None:
                return spec
        return None


def templated(dialect: str):
    """`dialect` extended with `$$NAME` parameters, as reconciler/sql.py had it (dollar quotes give way)."""
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.tokens import TokenType

    class TemplateParameter(exp.Expression):
        arg_types = {"this": True}

    def parse_parameter_or_template(self):
        if (self._curr is not None and self._curr.token_type == TokenType.PARAMETER
                and self._curr.start == self._prev.end + 1 and self._next is not None
                and self._next.start == self._curr.end + 1 and self._next.token_type == TokenType.VAR):
            self._advance(2)
            return self.expression(TemplateParameter(this=self._prev.text))
        return type(self).__mro__[1].PLACEHOLDER_PARSERS[TokenType.PARAMETER](self)

    base = Dialect.get_or_raise(dialect).__class__

    class Tokenizer(base.tokenizer_class):
        HEREDOC_STRINGS: list = []

    class Parser(base.parser_class):
        PLACEHOLDER_PARSERS = {**base.parser_class.PLACEHOLDER_PARSERS,
                               TokenType.PARAMETER: parse_parameter_or_template}

    class Generator(base.generator_class):
        TRANSFORMS = {**base.generator_class.TRANSFORMS, TemplateParameter: lambda _self, e: f"$${e.this}"}

    return type(f"Reconciler{base.__name__}", (base,),
                {"Tokenizer": Tokenizer, "Parser": Parser, "Generator": Generator}), TemplateParameter


def answer(request: dict) -> dict:
    """What the old reading made of one statement: its canonical form, parameters, and rendering."""
    import sqlglot
    from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, TokenError

    from reconciler.desired import sql
    from reconciler.desired.sql import rendering

    dialect, values = request["dialect"], request["values"]
    read, parameter = READERS.setdefault(dialect, templated(dialect))
    try:
        statements = [s for s in sqlglot.parse(request["sql"], read=read) if s is not None]
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        return {"parsed": False, "line": first.get("line") or 1, "column": first.get("col") or 1}
    except TokenError:
        return {"parsed": False, "line": 1, "column": 1}
    if len(statements) != 1:
        return {"parsed": False, "line": 1, "column": 1}
    tree = statements[0]

    def rewrite(node):
        if isinstance(node, parameter):
            return sql.literal(values[node.this])
        return sql.ENGINE_REWRITES.get(dialect, rendering._as_is)(node, dialect)

    try:
        rendered = tree.transform(rewrite).sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE, comments=False)
    except SqlglotError:
        rendered = None
    return {"parsed": True, "canonical": tree.sql(dialect=read, comments=False),
            "parameters": sorted({p.this for p in tree.find_all(parameter)}), "rendered": rendered}


READERS: dict = {}

if __name__ == "__main__":
    sys.meta_path.insert(0, SourceOnly())
    import sqlglot.parser

    print(json.dumps({"parser": sqlglot.parser.__file__}), flush=True)
    for line in sys.stdin:
        print(json.dumps(answer(json.loads(line))), flush=True)
