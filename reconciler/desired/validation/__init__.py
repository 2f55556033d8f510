"""The passes of validation, each over what the ones before it found (`validate` runs them in order).

`run` holds what a run has read and every problem found; `shape` checks environment.yaml and the
object files through pydantic (`tenants`: each tenant's url); `statements` reads the SQL;
`references` resolves the names it and the data flows use; `columns` binds them; `sensitive` says
which columns no sample may show; `data_checks` makes each check a query; `rules` checks the rules
of environment.yaml against all of it. Each reports every problem it finds and goes on; none
touches a tenant.
"""
