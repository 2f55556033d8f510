"""The rules of environment.yaml (the environment's and each tenant's) against the objects they
rule: connection swaps name Connections of the folder, schema mappings name schemas objects use and
map none to a reserved one, every parameter is used, every `$$NAME` has a value for every tenant, and a
checkpoint retention is one (12h, 30d, 2w).

Owns these checks, all reported on environment.yaml or on the file that uses the parameter. Never
applies a rule: `render` does, per tenant.
"""

from __future__ import annotations

from ...model import Connection, Environment
from .run import Run, did_you_mean
from .shape import reserved


def rules(run: Run, environment: Environment, objects, facts, data_checks) -> None:
    document = run.source.environment
    connection_names = {o.name for o in objects.values() if isinstance(o, Connection)} | \
        {str(k) for k, o in objects.items() if isinstance(o, Connection)}
    schemas = {k.schema for k in objects}
    checked = {key: [check.parameters for check in found] for key, found in data_checks.items()}
    used = {p for f in facts.values() for p in f.parameters} | {
        p for found in checked.values() for parameters in found for p in parameters}
    scopes = [(("rules",), environment.rules)] + [
        (("tenants", str(i), "rules"), t.rules) for i, t in enumerate(environment.tenants)]
    for loc, scope_rules in scopes:
        for source_name, target_name in scope_rules.connections.items():
            for name, what in ((source_name, "swaps"), (target_name, "swaps to")):
                if name not in connection_names:
                    run.report(document, "rules", f"connection rule {what} {name}, which is not a "
                               f"Connection here{did_you_mean(name, connection_names)}",
                               *loc, "connections", source_name)
        for schema, target in scope_rules.schemas.items():
            if schema not in schemas:
                run.report(document, "rules", f"schema rule maps '{schema}', which no object "
                           f"uses{did_you_mean(schema, schemas)}", *loc, "schemas", schema)
            if reserved(target):   # checked after mapping: the name the tenant would see
                run.report(document, "reserved", f"schema rule maps '{schema}' to '{target}', which is "
                           "reserved for the reconciler or the engine", *loc, "schemas", schema)
        if scope_rules.checkpoint_retention is not None and scope_rules.retention is None:
            run.report(document, "rules", f"checkpoint_retention {scope_rules.checkpoint_retention!r} is not a "
                       "retention: write a whole number and a unit, h, d or w (12h, 30d, 2w)", *loc,
                       "checkpoint_retention")
        for parameter in scope_rules.parameters:
            if parameter not in used:
                run.report(document, "rules", f"parameter {parameter} is not used by any SQL"
                           f"{did_you_mean(parameter, used)}", *loc, "parameters", parameter)
    for index, tenant in enumerate(environment.tenants):
        values = environment.rules_for(tenant).parameters
        for key, result in facts.items():
            for parameter in result.parameters:
                if parameter not in values:
                    run.report(run.documents[key], "parameter",
                               f"$${parameter} has no value for tenant {tenant.name}: add it "
                               "under rules.parameters in environment.yaml", "sql")
        for key, found in checked.items():
            for parameters in found:
                for parameter in sorted(set(parameters) - set(values)):
                    run.report(run.documents[key], "parameter",
                               f"$${parameter} (in a check) has no value for tenant {tenant.name}: add it "
                               "under rules.parameters in environment.yaml", "checks")
