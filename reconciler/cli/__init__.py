"""The command line: arguments in, rendered output and one exit code out. Holds no logic.

`common` holds the group and what every command shares, `pipeline`, `gitops` and `tenants` the
commands by group, and `main` the entry point.
"""

from .main import main, sqlglot_compiled, sqlglot_recursion_limit

__all__ = ["main", "sqlglot_compiled", "sqlglot_recursion_limit"]
