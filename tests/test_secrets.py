"""Secrets: files hold references only; a planted value never shows up anywhere we write or print."""

from __future__ import annotations

from pathlib import Path

from conftest import Landscape, snapshot

ERP = "leak-canary-erp-7f3a9d"
TENANT = "leak-canary-tenant-9c1e4b"
ENV_FILE = "environments/dev/environment.yaml"


def test_a_planted_secret_appears_in_no_output_file_or_tenant_row(landscape: Landscape, monkeypatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setenv("ERP_PASSWORD", ERP)
    monkeypatch.setenv("DEV_TENANT_PASSWORD", TENANT)
    landscape.edit(ENV_FILE, "    create: true", "    create: true\n    password: env:DEV_TENANT_PASSWORD")
    landscape.commit("dev tenant password")
    plan_file = tmp_path / "dev.plan.json"
    outputs = []

    def run(*args: str, code: int | None = 0) -> None:
        result = landscape.run(*args)
        assert code is None or result.code == code, (args, result.output)
        outputs.append(result.output)

    for fmt in ("text", "json", "github"):
        run("validate", "--format", fmt)
    for fmt in ("text", "json", "markdown"):
        run("plan", "dev", "--format", fmt, "--out", str(plan_file))
    run("apply", "dev", "--plan", str(plan_file), "--yes")
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "WHERE status = 'ACTIVE'",
                   "WHERE status = 'ACTIVE' AND id > 0")
    landscape.commit("a narrower view")
    for args in (("apply", "dev", "--yes"), ("history", "dev", "--format", "json"), ("history", "dev"),
                 ("status",), ("drift", "dev"), ("graph", "dev"), ("backups", "dev"),
                 ("rollback", "dev", "--to", "HEAD~1"), ("promote", "dev", "qa", "--no-pr")):
        run(*args)
    # a failing connection, and a missing variable: clear errors, no values
    landscape.edit(ENV_FILE, "duckdb:///.tenants/dev.duckdb", "duckdb:///.tenants")
    run("apply", "dev", "--yes", code=1)
    landscape.edit(ENV_FILE, "duckdb:///.tenants\n", "duckdb:///.tenants/dev.duckdb\n")
    monkeypatch.delenv("DEV_TENANT_PASSWORD")
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "SELECT id, name", "SELECT id, name, 1 AS x")
    before = snapshot(landscape.tenant())
    missing = landscape.run("apply", "dev", "--yes")
    assert missing.code == 1 and "environment variable DEV_TENANT_PASSWORD is not set" in missing.stderr
    assert snapshot(landscape.tenant()) == before
    outputs.append(missing.output)

    written = [p.read_bytes() for p in [plan_file, *landscape.root.rglob("*")] if p.is_file() and ".git/" not in str(p)]
    rows = repr(snapshot(landscape.tenant()))
    for secret in (ERP, TENANT):
        assert not any(secret in text for text in outputs)
        assert not any(secret.encode() in data for data in written)
        assert secret not in rows
        assert not any(secret.encode() in blob.data_stream.read() for blob in landscape.repo.head.commit.tree.traverse()
                       if blob.type == "blob")
