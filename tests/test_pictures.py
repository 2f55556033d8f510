"""Dependency pictures: dbt-style selection, and SVG/HTML drawn by the project itself."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

from conftest import Landscape

from reconciler import drawing
from reconciler import graph as graphs
from reconciler.model import ObjectKey


def nodes(landscape: Landscape, *args: str) -> list[str]:
    result = landscape.run("graph", "dev", "--format", "json", *args)
    assert result.code == 0, result.output
    return [node["id"] for node in json.loads(result.stdout)["nodes"]]


def test_selection_follows_dbt_habits(landscape: Landscape) -> None:
    assert nodes(landscape, "--select", "+vw_transaction_detail") == [
        "sales.customer_master", "sales.customer_transactions", "sales.vw_customer_active",
        "sales.vw_transaction_detail"]
    assert nodes(landscape, "--select", "vw_customer_lifetime_value+") == [
        "integration.df_segment_scoring", "sales.vw_customer_lifetime_value", "sales.vw_customer_segmentation"]
    assert nodes(landscape, "--select", "kind:Table schema:integration") == [
        "integration.Connection_ERP", "integration.df_customer_enrichment", "integration.df_segment_scoring",
        "sales.customer_master", "sales.customer_transactions"]
    landscape.edit("environments/dev/sales/views/vw_customer_lifetime_value.yaml", "SUM(amount)", "SUM(amount) ")
    assert nodes(landscape, "--select", "state:modified+", "--state", "qa") == [
        "integration.df_segment_scoring", "sales.vw_customer_lifetime_value", "sales.vw_customer_segmentation"]
    assert nodes(landscape, "--select", "state:modified", "--state", "HEAD") == ["sales.vw_customer_lifetime_value"]
    unknown = landscape.run("graph", "dev", "--select", "+vw_nope")
    assert unknown.code == 64 and "no object 'vw_nope'" in unknown.stderr


def test_svg_and_html_are_self_contained_and_mark_changed_objects(landscape: Landscape) -> None:
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "SELECT id,", "SELECT DISTINCT id,")
    svg = landscape.run("graph", "dev", "--format", "svg", "--state", "HEAD").stdout
    root = ElementTree.fromstring(svg)
    namespace = {"s": "http://www.w3.org/2000/svg"}
    groups = root.findall("s:g", namespace)
    drawn = json.loads(landscape.run("graph", "dev", "--format", "json").stdout)
    assert len(groups) == len(drawn["nodes"]) == 9
    assert len(root.findall("s:path", namespace)) == len(drawn["edges"])
    assert [g.get("data-id") for g in groups if g.get("data-state") == "modified"] == ["sales.vw_customer_active"]
    assert "href" not in svg and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    page = landscape.run("graph", "dev", "--format", "html").stdout
    assert page.startswith("<!doctype html>") and "<svg" in page and "DataFlow" in page
    assert "<script" not in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_large_graphs_collapse_to_one_box_per_schema() -> None:
    keys = {ObjectKey(f"s{n % 4}", f"v{n}"): [ObjectKey("s0", "v0")] if n else [] for n in range(400)}
    big = graphs.build(keys, {key: "View" for key in keys})
    root = ElementTree.fromstring(drawing.svg(big))
    labels = sorted(g.get("data-id") for g in root.findall("{http://www.w3.org/2000/svg}g"))
    assert labels == ["s0", "s1", "s2", "s3"]
    assert "s1 (100 objects)" in drawing.svg(big)
