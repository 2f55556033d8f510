"""Transport packages: export with the dependency closure, import verified, tampering refused."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from conftest import Landscape

NEW_VIEW = """kind: View
name: vw_top_customers
schema: sales
status: active
sql: SELECT customer_id, revenue FROM sales.vw_customer_lifetime_value WHERE revenue > 100
"""


def exported(landscape: Landscape, tmp_path: Path, version: str = "1.0.0") -> Path:
    package = tmp_path / f"top-{version}.zip"
    result = landscape.run("export", "dev", "--objects", "vw_top_customers", "--version", version,
                           "--name", "top-customers", "--notes", "Top customers by revenue", "--out", str(package))
    assert result.code == 0, result.output
    return package


def test_export_writes_the_closure_a_manifest_and_checksums(landscape: Landscape, tmp_path_factory) -> None:
    tmp_path = tmp_path_factory.mktemp("packages")   # outside the repository
    landscape.write("environments/dev/sales/views/vw_top_customers.yaml", NEW_VIEW)
    source = landscape.commit("top customers")
    package = exported(landscape, tmp_path)
    with zipfile.ZipFile(package) as archive:
        names = sorted(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        assert archive.read("objects/sales/views/vw_top_customers.yaml").decode() == NEW_VIEW
    assert names == ["SHA256SUMS", "manifest.json", "objects/sales/customer_master.yaml",
                     "objects/sales/customer_transactions.yaml", "objects/sales/views/vw_customer_active.yaml",
                     "objects/sales/views/vw_customer_lifetime_value.yaml",
                     "objects/sales/views/vw_top_customers.yaml", "objects/sales/views/vw_transaction_detail.yaml"]
    assert manifest["source"] == {"environment": "dev", "commit": source}
    assert manifest["version"] == "1.0.0" and manifest["release_notes"] == "Top customers by revenue"
    assert {"object": "sales.customer_master", "added_because": ["sales.vw_top_customers"]} in \
        manifest["dependency_report"]
    (tmp_path / "again").mkdir()
    assert exported(landscape, tmp_path / "again").read_bytes() == package.read_bytes()   # reproducible bytes
    draft = landscape.run("export", "dev", "--objects", "df_segment_scoring", "--version", "1.0.0",
                          "--out", str(tmp_path / "x.zip"))
    assert draft.code == 3 and "status is beta" in draft.stderr


def test_import_verifies_and_copies_onto_a_branch_then_refuses_old_versions(landscape: Landscape,
                                                                            tmp_path_factory) -> None:
    tmp_path = tmp_path_factory.mktemp("packages")   # outside the repository
    landscape.write("environments/dev/sales/views/vw_top_customers.yaml", NEW_VIEW)
    landscape.commit("top customers")
    package = exported(landscape, tmp_path)
    head = landscape.repo.head.commit.hexsha

    result = landscape.run("import", str(package), "--into", "qa", "--no-pr")

    assert result.code == 0, result.output
    assert "every checksum matches" in result.stdout
    branch = landscape.repo.heads["import/top-customers-1.0.0"]
    tree = branch.commit.tree
    assert (tree / "environments/qa/sales/views/vw_top_customers.yaml").data_stream.read().decode() == NEW_VIEW
    assert json.loads((tree / "environments/qa/.packages/top-customers.json").data_stream.read())["version"] == "1.0.0"
    assert "Import package top-customers 1.0.0 into qa" in branch.commit.message
    assert landscape.repo.head.commit.hexsha == head and not landscape.repo.is_dirty(untracked_files=True)
    landscape.repo.git.merge(branch.name, "--ff-only")
    assert landscape.run("apply", "qa", "--yes").code == 0
    assert landscape.sql("SELECT count(*) FROM duckdb_views() WHERE view_name = 'vw_top_customers'", "qa") == [(1,)]

    again = landscape.run("import", str(package), "--into", "qa", "--no-pr")
    assert again.code == 3 and "top-customers 1.0.0 is already imported; 1.0.0 is not newer" in again.stderr
    newer = exported(landscape, tmp_path, "1.1.0")
    assert landscape.run("import", str(newer), "--into", "qa", "--no-pr").code == 0


def test_a_tampered_package_is_refused_naming_the_file(landscape: Landscape, tmp_path_factory) -> None:
    tmp_path = tmp_path_factory.mktemp("packages")   # outside the repository
    landscape.write("environments/dev/sales/views/vw_top_customers.yaml", NEW_VIEW)
    landscape.commit("top customers")
    package = exported(landscape, tmp_path)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("vw_top_customers.yaml"):
                data = data.replace(b"revenue > 100", b"revenue > 0; DROP TABLE sales.customer_master")
            target.writestr(item, data)
    result = landscape.run("import", str(tampered), "--into", "qa", "--no-pr")
    assert result.code == 1
    assert "objects/sales/views/vw_top_customers.yaml does not match its checksum" in result.stderr
    assert [h.name for h in landscape.repo.heads] == ["main"]

    extra = tmp_path / "extra.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(extra, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("objects/sales/sneaky.yaml", "kind: Table\n")
    result = landscape.run("import", str(extra), "--into", "qa", "--no-pr")
    assert result.code == 1 and "objects/sales/sneaky.yaml is not listed in SHA256SUMS" in result.stderr
