"""The typed vocabulary: object identity, the four object kinds, environments and rules.

Owns the pydantic models (the JSON Schemas in `schemas/` are generated from them) and
`ObjectKey`, the one identity used everywhere. Never touches files, git or databases.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal, NamedTuple, Union
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

PLAIN_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
TENANT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
QUALIFIED_NAME = r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"
SECRET_REFERENCE = r"^env:[A-Za-z_][A-Za-z0-9_]*$"

Name = Annotated[str, Field(pattern=PLAIN_NAME, max_length=63)]
QualifiedName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")]
SecretReference = Annotated[str, Field(pattern=SECRET_REFERENCE,
                                       description="env:VARIABLE, read at apply time; never a value")]
ParameterValue = Union[str, int, float, bool]

KIND_RANK = {"Connection": 0, "Table": 1, "View": 2, "DataFlow": 3}


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


class Column(_Frozen):
    name: Name
    type: str = Field(description="SQL type in the landscape's dialect, e.g. BIGINT, VARCHAR, DECIMAL(18,2)")
    nullable: bool = True
    default: str | None = Field(None, description="SQL expression used as the column default")
    description: str = ""
    renamed_from: Name | None = Field(None, description="the column's former name: renamed in place, values kept")


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


class View(_Object):
    kind: Literal["View"]
    sql: str = Field(description="one SELECT; $$NAME inserts the parameter NAME as a SQL literal")


class DataFlow(_Object):
    kind: Literal["DataFlow"]
    connection: QualifiedName = Field(description="the Connection it reads from (name or schema.name)")
    target: QualifiedName = Field(description="the Table it writes, as schema.name")
    sql: str = Field(description="one INSERT INTO <target> SELECT ...")
    schedule: str | None = None


class Connection(_Object):
    kind: Literal["Connection"]
    type: str
    properties: dict[str, ParameterValue] = {}
    secrets: dict[str, SecretReference] = {}


DataObject = Annotated[Union[Table, View, DataFlow, Connection], Field(discriminator="kind")]
OBJECT_KINDS = {"Table": Table, "View": View, "DataFlow": DataFlow, "Connection": Connection}


class Rules(_Frozen):
    connections: dict[str, str] = Field({}, description="connection swaps: name in the folder -> name used here")
    parameters: dict[Name, ParameterValue] = Field({}, description="values for $$NAME in SQL")
    schemas: dict[Name, Name] = Field({}, description="schema mapping: schema in the folder -> schema in the tenant")
    capacity: str | None = Field(None, description="capacity / warehouse the tenant runs on (recorded)")


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
        parameters of its url (a Spark Connect `;token=env:NAME`)."""
        parameters = self.url.partition("/;")[2].split(";") if "/;" in self.url else []
        held = [value for _, _, value in (p.partition("=") for p in parameters) if value.startswith("env:")]
        return tuple(reference.removeprefix("env:") for reference in [*([self.password] if self.password else []),
                                                                      *held])

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
