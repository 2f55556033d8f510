"""The typed vocabulary: object identity, the object kinds (and their data checks), environments and rules.

Owns the pydantic models (the JSON Schemas in `schemas/` are generated from them) and
`ObjectKey`, the one identity used everywhere. Never touches files, git or databases.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import Enum
from typing import Annotated, Literal, NamedTuple, Union
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    FiniteFloat,
    Tag,
    WithJsonSchema,
    model_validator,
)

PLAIN_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
TENANT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
QUALIFIED_NAME = r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"
SECRET_REFERENCE = r"^env:[A-Za-z_][A-Za-z0-9_]*$"
SQL_NUMBER = r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"   # SQL's numeric literal, signed

Name = Annotated[str, Field(pattern=PLAIN_NAME, max_length=63)]
QualifiedName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")]
SecretReference = Annotated[str, Field(pattern=SECRET_REFERENCE,
                                       description="env:VARIABLE, read at apply time; never a value")]
Scalar = Union[str, int, FiniteFloat, bool]   # a property or an accepted value: a number is a number, text is text

KIND_RANK = {"Connection": 0, "Table": 1, "View": 2, "MaterializedTable": 2, "DataFlow": 3}


class ObjectKey(NamedTuple):
    """Identity of an object in an environment: `schema.name`, ordered by schema then name."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    @classmethod
    def parse(cls, text: str) -> ObjectKey:
        schema, _, name = text.partition(".")
        return cls(schema, name)

    def folded(self) -> ObjectKey:
        """The case-insensitive form engines compare unquoted names by."""
        return ObjectKey(self.schema.lower(), self.name.lower())


class Status(str, Enum):
    active = "active"
    draft = "draft"
    beta = "beta"
    deprecated = "deprecated"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Bounds(_Frozen):
    min: FiniteFloat | None = None
    max: FiniteFloat | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Bounds:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        return self


class Relationship(_Frozen):
    to: Annotated[str, Field(pattern=QUALIFIED_NAME, description="the table or view the column refers to")]
    column: Name = Field(description="its column the values must appear in")


CHECK_KINDS = ("not_null", "unique", "accepted_values", "accepted_range", "relationships", "row_count",
               "expression", "sql")
COLUMN_CHECK_KINDS = CHECK_KINDS[:5]   # what a check written under a column may be


class Check(_Frozen):
    """One data check: exactly one of the kinds, with its severity and an optional row filter. Under a
    column it checks that column; under the object it names its column (`column:`, or the column
    as the value of `not_null` / `unique`)."""

    name: Name | None = Field(None, description="its name in results and the audit (default: kind and columns)")
    severity: Literal["error", "warn"] = Field("error", description="error: a failure stops the apply; "
                                                                    "warn: reported and recorded")
    where: str | None = Field(None, description="SQL condition: only the rows it holds for are checked")
    column: Name | None = Field(None, description="object level: the column a column check is about")
    not_null: bool | Name | None = Field(None, description="no NULL (object level: the column's name)")
    unique: bool | Name | tuple[Name, ...] | None = Field(
        None, description="no value twice (object level: a column, or a list of columns unique together); "
                          "rows with a NULL in the key are not compared")
    accepted_values: tuple[Scalar, ...] | None = Field(None, min_length=1,
                                                       description="every non-NULL value is one of these")
    accepted_range: Bounds | None = Field(None, description="every non-NULL value is within min..max (inclusive)")
    relationships: Relationship | None = Field(None, description="every non-NULL value appears in to.column")
    row_count: Bounds | None = Field(None, description="the number of rows is within min..max (inclusive)")
    expression: str | None = Field(None, description="boolean SQL over one row; a row where it is false or "
                                                     "NULL fails")
    sql: str | None = Field(None, description="one SELECT returning the offending rows: no rows passes")

    @model_validator(mode="after")
    def _one_kind(self) -> Check:
        kinds = [kind for kind in CHECK_KINDS if getattr(self, kind) not in (None, False)]
        if len(kinds) != 1:
            found = f"found {', '.join(kinds)}" if kinds else "found none"
            raise ValueError(f"a check is exactly one of {', '.join(CHECK_KINDS)} ({found})")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in CHECK_KINDS if getattr(self, kind) not in (None, False))


def _shorthand(value: object) -> object:
    """`not_null` under a column is `{not_null: true}`."""
    if isinstance(value, str) and value not in ("not_null", "unique"):
        raise ValueError(f"'{value}' is not a check written by name alone (only not_null and unique are): "
                         "write a mapping such as {accepted_values: [A, B]}")
    return {value: True} if isinstance(value, str) else value


class _OrShorthand:
    """The JSON Schema of a column check: the check, or the name of a kind that needs no argument."""

    @staticmethod
    def __get_pydantic_json_schema__(core_schema, handler) -> dict:
        return {"anyOf": [{"enum": ["not_null", "unique"]}, handler(core_schema)]}


ColumnCheck = Annotated[Check, BeforeValidator(_shorthand), _OrShorthand]


class Column(_Frozen):
    name: Name
    type: str = Field(description="SQL type in the landscape's dialect, e.g. BIGINT, VARCHAR, DECIMAL(18,2)")
    nullable: bool = True
    default: str | None = Field(None, description="SQL expression used as the column default")
    description: str = ""
    renamed_from: Name | None = Field(None, description="the column's former name: renamed in place, values kept")
    sensitive: bool = Field(False, description="never shown in a check's sample of offending rows (nor is "
                                               "any view column computed from it)")
    checks: tuple[ColumnCheck, ...] = Field((), description="checks of this column: not_null, unique, "
                                                            "accepted_values, accepted_range, relationships")


class _Object(_Frozen):
    name: Name
    schema_: Name = Field(alias="schema", description="schema / space / lakehouse the object lives in")
    description: str = ""
    status: Status = Status.active

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.schema_, self.name)


class Table(_Object):
    kind: Literal["Table"]
    columns: tuple[Column, ...] = Field(min_length=1)
    primary_key: tuple[Name, ...] = ()
    renamed_from: Name | None = Field(None, description="the table's former name in the same schema: "
                                                        "renamed in place, rows kept")
    checks: tuple[Check, ...] = Field((), description="checks of the whole table, run inside every apply "
                                                      "that changes it and by `reconciler check`")


class View(_Object):
    kind: Literal["View"]
    sql: str = Field(description="one SELECT; $$NAME inserts the parameter NAME as a SQL literal")
    checks: tuple[Check, ...] = Field((), description="checks of the view's rows, run inside every apply "
                                                      "that changes it or what it reads, and by `reconciler check`")


class PinnedColumn(_Frozen):
    name: Name
    type: str = Field(description="the type the column is stored as (the query's value is cast to it)")
    description: str = ""
    sensitive: bool = Field(False, description="never shown in a check's sample of offending rows")
    checks: tuple[ColumnCheck, ...] = Field((), description="checks of this column")


class MaterializedTable(_Object):
    """A table whose rows come from a query: created with CREATE TABLE ... AS, rebuilt when its query or
    a column it reads changes, refreshed with `reconciler run`."""

    kind: Literal["MaterializedTable"]
    sql: str = Field(description="one SELECT; its rows are the table's; $$NAME inserts a parameter")
    columns: tuple[PinnedColumn, ...] = Field((), description="optional: columns whose type is pinned (cast), "
                                                              "in the query's order; the others keep the "
                                                              "type the query gives")
    checks: tuple[Check, ...] = Field((), description="checks of the table's rows, run inside every apply "
                                                      "that builds it and by `reconciler check`")


class DataFlow(_Object):
    kind: Literal["DataFlow"]
    connection: QualifiedName = Field(description="the Connection it reads from (name or schema.name)")
    target: QualifiedName = Field(description="the Table it writes, as schema.name")
    sql: str = Field(description="one INSERT INTO <target> SELECT ..., which appends the rows its query gives")
    schedule: str | None = None
    mode: Literal["append", "upsert"] = Field(
        "append", description="append: its rows are added; upsert: a row whose key is in the target already "
                              "replaces that row's other columns (the reconciler writes the upsert)")
    unique_key: tuple[Name, ...] = Field((), description="upsert: the target's primary key, which decides "
                                                          "what a row replaces")

    @model_validator(mode="after")
    def _key_with_upsert(self) -> DataFlow:
        if self.mode == "upsert" and not self.unique_key:
            raise ValueError("mode: upsert needs the `unique_key:` that decides which row a row replaces")
        if self.mode == "append" and self.unique_key:
            raise ValueError("`unique_key:` is for mode: upsert; an appending flow replaces nothing")
        return self


class Connection(_Object):
    kind: Literal["Connection"]
    type: str
    properties: dict[str, Scalar] = {}
    secrets: dict[str, SecretReference] = {}


DataObject = Annotated[Union[Table, View, MaterializedTable, DataFlow, Connection], Field(discriminator="kind")]
OBJECT_KINDS = {"Table": Table, "View": View, "MaterializedTable": MaterializedTable, "DataFlow": DataFlow,
                "Connection": Connection}


def _sql_number(text: str) -> str:
    if not re.match(SQL_NUMBER, text):
        raise ValueError(f"'{text}' is not a SQL numeric literal: digits with an optional minus sign, decimal point "
                         "and exponent, such as 1.50, -2 or 1e3")
    return text


class Numeric(_Frozen):
    """A parameter inlined as a number: the SQL numeric literal exactly as written (`1.50` stays 1.50)."""

    numeric: Annotated[str, AfterValidator(_sql_number), WithJsonSchema({
        "anyOf": [{"type": "number"}, {"type": "string", "pattern": SQL_NUMBER}],
        "description": "a SQL numeric literal, inlined exactly as written: 1.50, -2, 1e3"})]


def _one_value(value: object) -> object:
    if value is None:
        raise ValueError("no value is written: write the text ('' for empty text), or {numeric: NUMBER}")
    if isinstance(value, list):
        raise ValueError("a parameter is one value: text, or {numeric: NUMBER}")
    return value


# A parameter is the text written, inlined as SQL text whatever it looks like (`10` is '10', `1:30` is
# '1:30'), or a number declared as one. The loader reads `10` as a number; validation hands the model the
# text written (`source.Document.written`), so the text is all the model sees.
ParameterValue = Annotated[
    Union[Annotated[str, BeforeValidator(_one_value), Tag("text"), WithJsonSchema({
        "type": ["string", "number", "boolean", "null"],
        "description": "inlined as SQL text, exactly as written: 10 is '10', 1:30 is '1:30'"})],
          Annotated[Numeric, Tag("numeric")]],
    Discriminator(lambda value: "numeric" if isinstance(value, (dict, Numeric)) else "text")]


RETENTION = re.compile(r"^([1-9][0-9]{0,4})([hdw])$")   # a checkpoint retention: 12h, 30d, 2w
RETENTION_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


class Rules(_Frozen):
    connections: dict[str, str] = Field({}, description="connection swaps: name in the folder -> name used here")
    parameters: dict[Name, ParameterValue] = Field({}, description="values for $$NAME in SQL: text as written, "
                                                                   "or {numeric: NUMBER}")
    schemas: dict[Name, Name] = Field({}, description="schema mapping: schema in the folder -> schema in the tenant")
    capacity: str | None = Field(None, description="capacity / warehouse the tenant runs on (recorded)")
    table_format: Literal["parquet", "delta"] | None = Field(
        None, description="Spark tenants: the format their tables are created in (USING parquet | delta); "
                          "parquet when unset. Set on an environment, it is the default of its Spark tenants")
    checkpoint_retention: str | None = Field(
        None, description="How long a checkpoint stays restorable, e.g. 30d, 12h, 2w: `prune-backups` lists "
                          "(and with --yes drops) the copies of older ones; unset, they age as backups do")

    @property
    def retention(self) -> dt.timedelta | None:
        """`checkpoint_retention` as a time (None: unset, or not a retention: validation says so)."""
        found = RETENTION.match(self.checkpoint_retention or "")
        if not found:
            return None
        return dt.timedelta(**{RETENTION_UNITS[found.group(2)]: int(found.group(1))})


class Tenant(_Frozen):
    name: Annotated[str, Field(pattern=TENANT_NAME, max_length=63)]
    url: str = Field(description="duckdb:///relative/to/repo.duckdb or duckdb:////absolute/path.duckdb")
    password: SecretReference | None = None
    create: bool = Field(False, description="create the database file when it does not exist")
    lock_timeout: str | None = Field(None, description="PostgreSQL: how long a statement waits for a lock, e.g. 5s")
    statement_timeout: str | None = Field(None, description="PostgreSQL: the longest any statement may run, e.g. 10min")

    @property
    def secret_names(self) -> tuple[str, ...]:
        """The variables its credentials come from: its password, and the `name=env:VARIABLE`
        parameters of its url (a Spark Connect `;token=env:NAME`, a Snowflake `?private_key=env:NAME`)."""
        parameters = self.url.partition("/;")[2].split(";") if "/;" in self.url else []
        parameters += [f"{name}={value}" for name, value in parse_qsl(urlsplit(self.url).query)]
        held = [value for _, _, value in (p.partition("=") for p in parameters) if value.startswith("env:")]
        return tuple(reference.removeprefix("env:") for reference in [*([self.password] if self.password else []),
                                                                      *held])

    @property
    def may_send_credentials(self) -> bool:
        """Whether opening it may send a credential: one it names (`secret_names`), or one its client finds
        by itself (libpq reads PGPASSWORD, ~/.pgpass and service files): every engine reached over the
        network, all but DuckDB, whose tenant is a local file."""
        return bool(self.secret_names) or self.engine != "duckdb"

    @property
    def engine(self) -> str:
        """The sqlglot dialect of the engine the url names (postgresql:// is sqlglot's postgres)."""
        scheme = urlsplit(self.url).scheme
        return {"postgresql": "postgres", "sc": "spark"}.get(scheme, scheme)
    rules: Rules = Rules()


class Environment(_Frozen):
    name: Annotated[str, Field(pattern=TENANT_NAME, max_length=63)]
    promotes_from: str | None = None
    protected: bool = False
    dialect: str = Field("duckdb", description="SQL dialect the object SQL is written in")
    tenants: tuple[Tenant, ...] = Field(min_length=1)
    rules: Rules = Rules()
    allow_data_loss: tuple[Annotated[str, Field(pattern=QUALIFIED_NAME)], ...] = Field(
        (), description="Objects (schema.name as the tenant sees them) whose data loss is acknowledged "
                        "in review, for CI; each also gets a backup before the change")
    allow_functions: tuple[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")],
                           ...] = Field(
        (), description="Functions of the tenant's own (name or schema.name) that SQL may call besides the "
                        "engine's allowlist; in a pull request's plan only those the base branch allows")
    backup_retention_days: int | None = Field(
        None, ge=1, description="Backups older than this are listed by `prune-backups` (never dropped silently)")

    @property
    def engines(self) -> dict[str, str]:
        """The sqlglot dialect of each tenant's engine, by tenant name."""
        return {tenant.name: tenant.engine for tenant in self.tenants}

    def rules_for(self, tenant: Tenant) -> Rules:
        """Environment rules with the tenant's own rules laid over them."""
        return Rules(
            connections={**self.rules.connections, **tenant.rules.connections},
            parameters={**self.rules.parameters, **tenant.rules.parameters},
            schemas={**self.rules.schemas, **tenant.rules.schemas},
            capacity=tenant.rules.capacity or self.rules.capacity,
            table_format=tenant.rules.table_format or self.rules.table_format,
            checkpoint_retention=tenant.rules.checkpoint_retention or self.rules.checkpoint_retention,
        )


def json_schemas() -> dict[str, dict]:
    """The JSON Schemas committed in schemas/, for editors (yaml-language-server) and CI."""
    from pydantic import TypeAdapter

    dialect = "https://json-schema.org/draft/2020-12/schema"
    objects = TypeAdapter(DataObject).json_schema(by_alias=True)
    environment = Environment.model_json_schema(by_alias=True)
    return {
        "object.schema.json": {"$schema": dialect, "title": "reconciler object file", **objects},
        "environment.schema.json": {"$schema": dialect, "title": "reconciler environment.yaml",
                                    **environment},
    }
