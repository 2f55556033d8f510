"""Everything the reconciler knows about SQL, through sqlglot; callers write `sql.parse`, `sql.render`.

`problems` holds `SqlProblem`, the one error of the package; `templates` reads SQL text into tokens
(`$$NAME` parameters by sqlglot's own tokenizer, never by text scanning; nesting too deep to parse);
`parsing` parses a statement, a default or a condition, each text once per process; `facts` reads what
a statement references, writes and calls, and its canonical form; `values` holds types, defaults and
literals; `rendering` renders a statement for a tenant (parameters as quoted literals, schema
mapping, transpiling to the tenant's engine). Results are cached by a hash of their inputs. Never
hand-parses SQL and never executes it, and never subclasses sqlglot's classes: its compiled build
(sqlglotc) refuses interpreted subclasses.
"""

from .facts import (
    CALLS_VERSION,
    FACTS_VERSION,
    SqlFacts,
    analyze,
    calls,
    calls_in,
    depends_on,
    permanent_view_query,
    rows_read,
    select_items,
    sequence_calls,
    view_reads,
    without_select_list,
    written_elsewhere,
    written_objects,
)
from .parsing import parse, parse_condition, parse_expression, parsed, position, take
from .problems import TOO_DEEP, SqlProblem, bounded, unsupported
from .rendering import (
    DEFAULT_TABLE_FORMAT,
    DESCRIPTIONS_AS_COMMENTS,
    ENGINE_DROPS,
    ENGINE_REWRITES,
    NAMED,
    NAMES_EVERY_VIEW_OUTPUT,
    RENDER_VERSION,
    SUNDAY_ZERO,
    TABLE_PROPERTIES,
    materialized,
    meaning_changes,
    qualified,
    quote,
    render,
    staged,
    untranslatable,
    upsert,
)
from .templates import MAX_NESTING, parameter_name, parameters_in, template_parameter, within_nesting
from .values import (
    canonical_default,
    condition_type,
    literal,
    normalize_type,
    not_numeric,
    parameter,
    value_mismatch,
)

__all__ = [
    "CALLS_VERSION", "DEFAULT_TABLE_FORMAT", "DESCRIPTIONS_AS_COMMENTS", "ENGINE_DROPS", "ENGINE_REWRITES",
    "FACTS_VERSION", "MAX_NESTING",
    "NAMED", "NAMES_EVERY_VIEW_OUTPUT", "RENDER_VERSION", "SUNDAY_ZERO", "TABLE_PROPERTIES", "TOO_DEEP",
    "SqlFacts", "SqlProblem",
    "analyze", "bounded", "calls", "calls_in", "canonical_default", "condition_type", "depends_on", "literal",
    "materialized", "meaning_changes", "normalize_type", "not_numeric", "parameter", "parameter_name",
    "parameters_in", "parse", "parse_condition", "parse_expression", "parsed", "permanent_view_query",
    "position", "qualified", "quote", "render", "select_items", "sequence_calls", "staged", "take",
    "template_parameter",
    "unsupported", "untranslatable", "upsert", "value_mismatch", "view_reads", "within_nesting",
    "without_select_list", "written_elsewhere", "written_objects", "rows_read",
]
