"""SQL that cannot be used: `SqlProblem` (a message and where inside the SQL text), and sqlglot's own
slips and refusals turned into one.

Owns the error every SQL function of the package raises and `bounded`, which keeps a slip inside
sqlglot (a RecursionError, an IndexError in its parser) from ever reaching the user as a traceback.
Never reads SQL itself.
"""

from __future__ import annotations

import functools

from sqlglot.errors import UnsupportedError

TOO_DEEP = "the SQL nests too deeply to be read (parentheses or subqueries hundreds of levels deep)"


class SqlProblem(Exception):
    """SQL that cannot be used, with the position inside the SQL text (1-based)."""

    def __init__(self, message: str, line: int = 1, column: int = 1):
        super().__init__(message)
        self.line, self.column = line, column


def bounded(function):
    """SQL nested deeper than the parser's recursion reaches, and SQL sqlglot itself slips on (an
    IndexError in its parser, an AttributeError in its generator), are a SqlProblem, never a traceback."""
    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except RecursionError:
            raise SqlProblem(TOO_DEEP) from None
        except (IndexError, KeyError, TypeError, ValueError, AttributeError) as error:
            raise SqlProblem(f"sqlglot cannot read or write this SQL ({type(error).__name__} inside sqlglot)") \
                from None
    return call


def unsupported(error: UnsupportedError) -> str:
    """sqlglot's reasons, each once (it repeats one per place it meets it, a blank line between)."""
    return "; ".join(dict.fromkeys(line.strip() for line in str(error).splitlines() if line.strip()))
