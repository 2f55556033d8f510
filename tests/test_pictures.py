"""Dependency pictures: dbt-style selection, and SVG/HTML drawn by the project itself."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

from conftest import Landscape

from reconciler import graph as graphs
from reconciler.model import ObjectKey
from reconciler.views import drawing


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
    groups = [g for g in root.findall("s:g", namespace) if g.get("class") == "node"]
    drawn = json.loads(landscape.run("graph", "dev", "--format", "json").stdout)
    assert len(groups) == len(drawn["nodes"]) == 9
    assert len([p for p in root.findall("s:path", namespace) if p.get("class") == "edge"]) == len(drawn["edges"])
    assert root.find("s:g[@class='legend']", namespace) is not None
    assert [g.get("data-id") for g in groups if g.get("data-state") == "modified"] == ["sales.vw_customer_active"]
    assert "href" not in svg and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    page = landscape.run("graph", "dev", "--format", "html").stdout
    assert page.startswith("<!doctype html>") and "<svg" in page and "DataFlow" in page
    assert "<script" not in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_large_graphs_collapse_to_one_box_per_schema() -> None:
    keys = {ObjectKey(f"s{n % 4}", f"v{n}"): [ObjectKey("s0", "v0")] if n else [] for n in range(400)}
    big = graphs.build(keys, {key: "View" for key in keys})
    root = ElementTree.fromstring(drawing.svg(big))
    labels = sorted(g.get("data-id") for g in root.findall("{http://www.w3.org/2000/svg}g")
                    if g.get("class") == "node")
    assert labels == ["s0", "s1", "s2", "s3"]
    assert "s1 (100 objects)" in drawing.svg(big)


def boxes_and_edges(svg: str) -> tuple[dict[str, tuple[float, float, float, float]], list[tuple[str, str, list]]]:
    """From a drawn SVG: each node's box (x0, y0, x1, y1) and each edge's ends and polyline points."""
    namespace = "{http://www.w3.org/2000/svg}"
    root = ElementTree.fromstring(svg)
    boxes = {}
    for group in root.iter(f"{namespace}g"):
        if group.get("class") == "node":
            rect = group.find(f"{namespace}rect")
            x, y = float(rect.get("x")), float(rect.get("y"))
            boxes[group.get("data-id")] = (x, y, x + float(rect.get("width")), y + float(rect.get("height")))
    edges = []
    for path in root.iter(f"{namespace}path"):
        if path.get("class") == "edge":
            points = [tuple(map(float, p.split(","))) for p in path.get("d").lstrip("M").split(" L")]
            edges.append((path.get("data-from"), path.get("data-to"), points))
    return boxes, edges


def crosses(a: tuple[float, float], b: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    """Whether the segment a-b passes through the inside of the box (Liang-Barsky clipping)."""
    x0, y0, x1, y1 = box[0] + 1, box[1] + 1, box[2] - 1, box[3] - 1   # touching a border is not crossing
    dx, dy = b[0] - a[0], b[1] - a[1]
    low, high = 0.0, 1.0
    for p, q in ((-dx, a[0] - x0), (dx, x1 - a[0]), (-dy, a[1] - y0), (dy, y1 - a[1])):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def assert_no_edge_crosses_a_box(svg: str) -> int:
    boxes, edges = boxes_and_edges(svg)
    for source, target, points in edges:
        for a, b in zip(points, points[1:]):
            for node, box in boxes.items():
                assert node in (source, target) or not crosses(a, b, box), f"{source} -> {target} crosses {node}"
    return len(edges)


def test_no_edge_passes_through_a_box_it_does_not_connect(landscape: Landscape) -> None:
    """Issue 10, item 22: a straight line between layers drew lineage that does not exist."""
    import random

    assert crosses((0, 5), (20, 5), (5, 0, 10, 10)) and not crosses((0, 20), (20, 20), (5, 0, 10, 10))
    demo = landscape.run("graph", "dev", "--format", "svg").stdout
    assert assert_no_edge_crosses_a_box(demo) == 11
    random.seed(7)
    keys = {ObjectKey(f"s{n % 5}", f"v{n}"): [ObjectKey(f"s{m % 5}", f"v{m}") for m in
                                              random.sample(range(n), min(n, random.randint(1, 3)))] if n else []
            for n in range(120)}
    assert assert_no_edge_crosses_a_box(drawing.svg(graphs.build(keys, {key: "View" for key in keys}))) > 200


def test_a_data_flow_points_at_the_table_it_writes(landscape: Landscape) -> None:
    edges = {(e["from"], e["to"]) for e in json.loads(landscape.run("graph", "dev", "--format", "json").stdout)["edges"]}
    assert ("integration.df_customer_enrichment", "sales.customer_master") in edges
    assert ("sales.customer_master", "integration.df_customer_enrichment") not in edges
    assert ("sales.vw_customer_active", "integration.df_customer_enrichment") in edges   # what it reads
