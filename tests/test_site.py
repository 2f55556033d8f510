"""The landscape site (`reconciler site`): static pages built from git and the tenants' audit, walked in a
real headless browser (Debian's chromium driven by npm's playwright-core; .ci/run installs both) as a
person would: search, open a hit, follow a lineage edge, the keyboard; and every picture measured in
the rendered page. Screenshots are kept in RECONCILER_TEST_ARTEFACTS (a folder), else in the test's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, quote, unquote, urlsplit

import networkx as nx
import pytest
from conftest import ROOT, Landscape

from reconciler.model import ObjectKey
from reconciler.views import drawing, site_lineage
from reconciler.views.site import ASSETS
from reconciler.views.site_html import (
    around_path,
    column_lineage_href,
    drawn_in_browser,
    highlighted,
    shared_graph_href,
)

NODE_MODULES = Path(os.environ.get("RECONCILER_PLAYWRIGHT_NODE_MODULES",
                                   Path.home() / ".cache" / "reconciler-ci" / "playwright" / "node_modules"))
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
GENERATOR = next((folder / "shared" / "bench" / "gen_landscape.py" for folder in (ROOT.parent, ROOT.parent.parent)
                  if (folder / "shared" / "bench" / "gen_landscape.py").exists()), None)
VIEW = "environments/dev/sales/views/vw_customer_active.yaml"
AROUND = "lineage/dev.html?object=sales.vw_customer_active&levels=2"   # the demo's view, two levels either way


def walk(site: Path, shots: Path, query: str, obj: str, *pages: str) -> dict:
    """tests/tools/site.cjs on the site: what a person's search, click and keyboard found, and each page's
    headings and pictures as measured in Chromium."""
    assert Path(CHROMIUM).exists() and (NODE_MODULES / "playwright-core").is_dir(), (
        "the browser test needs Debian's chromium and npm's playwright-core (.ci/run installs them)")
    shots.mkdir(parents=True, exist_ok=True)
    walked = subprocess.run(["node", str(ROOT / "tests" / "tools" / "site.cjs"), str(site), str(shots), query, obj,
                             *pages], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NODE_PATH": str(NODE_MODULES), "CHROMIUM": CHROMIUM})
    assert walked.returncode == 0, walked.stderr
    (shots / "walk.json").write_text(walked.stdout)   # kept with the screenshots: each page's load time too
    return json.loads(walked.stdout)


def artefacts(tmp_path: Path, name: str) -> Path:
    kept = os.environ.get("RECONCILER_TEST_ARTEFACTS")
    return Path(kept) / name if kept else tmp_path / "shots"


def assert_true_pictures(seen: dict) -> None:
    """Every page has one h1 and never skips a heading level; every picture's boxes are apart, and each
    edge starts and ends on its boxes, passes through none and stays on the canvas; no label is cut."""
    for page, found in seen["pages"].items():
        levels = found["headings"]
        assert levels.count(1) == 1 and levels[0] == 1, page
        assert all(b <= a + 1 for a, b in zip(levels, levels[1:])), (page, levels)
        for picture in found["pictures"]:
            assert picture["boxes"], page
            assert {k: picture[k] for k in ("overlaps", "loose", "outside", "through", "cut")} == {
                "overlaps": [], "loose": [], "outside": [], "through": [], "cut": []}, page


def test_the_demo_site_after_a_walkthrough_is_browsed_searched_and_its_pictures_are_true(
        landscape: Landscape, tmp_path: Path) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.run("check", "dev").code == 0
    landscape.edit(VIEW, "SELECT id,", "SELECT DISTINCT id,")
    landscape.commit("dev: one customer once")
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.run("rollback", "dev", "--to", "HEAD~1", "--execute").code == 0
    site = tmp_path / "site"

    result = landscape.run("site", "--out", str(site))

    assert result.code == 0, result.output
    pages = {p.relative_to(site).as_posix(): p.read_text() for p in site.rglob("*") if p.is_file()}
    assert all("http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") for text in pages.values())
    runs = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    assert [r["operation"] or "apply" for r in runs] == ["apply", "check", "apply", "rollback"]
    assert all(f"runs/{r['run_id']}.html" in pages for r in runs)
    rollback = pages[f"runs/{runs[-1]['run_id']}.html"]
    assert "<dd>rollback</dd>" in rollback and "sales.vw_customer_active</a>" in rollback
    active = pages["objects/sales.vw_customer_active.html"]
    assert all(f"runs/{r['run_id']}.html" in active for r in runs if r["operation"] != "check")   # three changed it
    assert '<span class="k">SELECT</span>' in active and "dev → qa" in active
    assert "<td>qa: create (" in active and "<td>dev</td><td>" in active   # qa never applied; dev rolled back
    lifetime = pages["objects/sales.vw_customer_lifetime_value.html"]
    assert lifetime.count('<span class="passed">passed</span>') == 3   # its three checks' latest result in dev
    assert not [(page, href) for page, href in links(site) if not (site / page).parent.joinpath(href).is_file()]
    asked = [(Path(urlsplit(href).path).stem, parse_qs(urlsplit(href).query)["object"][0])
             for _, href in links(site, whole=True) if "?object=" in href]   # (environment, object)
    assert len(asked) > 11 and not [(env, name) for env, name in asked if name not in boxes(site, env)]   # drawable
    pending = pages["pending.html"]   # qa was never applied: its creates, the values they spell hidden
    assert "CREATE VIEW" in pending and "&#x27;...&#x27;" in pending and "ACTIVE" not in pending

    shots = artefacts(tmp_path, "site-demo")
    seen = walk(site, shots, "email", "sales.customer_master", "index.html", "lineage.html", "pending.html",
                "runs.html", "objects/sales.vw_customer_active.html", "objects/sales.vw_customer_lifetime_value.html",
                AROUND,
                f"runs/{runs[-1]['run_id']}.html")
    assert seen["errors"] == []
    assert seen["search"]["hits"][:2] == ["sales.customer_master.email", "sales.vw_customer_active.email"]
    assert seen["search"] | {"hits": None} == {"hits": None, "focused": "sales.customer_master.email",
                                               "opened": "sales.customer_master.html",
                                               "title": "sales.customer_master · reconciler", "target": "col-email"}
    assert seen["followed"] == {"edge": ["sales.customer_master", "sales.vw_customer_active"],
                                "h1": "sales.vw_customer_active"}
    assert seen["keyboard"] == {"first": "Skip to content", "hash": "#main"}
    assert_true_pictures(seen)
    assert [(p["boxes"], p["edges"]) for p in seen["pages"]["lineage.html"]["pictures"]] == [(9, 11)]
    around = seen["pages"][AROUND]   # the environment's page, drawn by its script from the address
    assert around["title"] == "Lineage of sales.vw_customer_active ±2 · reconciler"
    assert around["column_rows"] == column_rows(landscape.root, "sales.vw_customer_active", 2) > 0
    assert (shots / "objects_sales.vw_customer_active.html.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_hostile_description_stays_text_on_every_page_and_in_search(landscape: Landscape, tmp_path: Path) -> None:
    """A pull request writes descriptions: markup in one is shown as the text it is, never run."""
    hostile = "<script>alert('pwned')</script><img src=x onerror=alert(2)>"
    landscape.edit(VIEW, "description: Active customers of this tenant's region", f'description: "{hostile} shady"')
    landscape.commit("a hostile description")
    site = tmp_path / "site"

    assert landscape.run("site", "--out", str(site)).code == 0

    texts = [p.read_text() for p in site.rglob("*.html")]
    assert not any("<script>alert" in text or "<img src=x" in text for text in texts)
    assert sum("&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in text for text in texts) == 1
    seen = walk(site, artefacts(tmp_path, "site-hostile"), "shady", "sales.vw_customer_active",
                "objects/sales.vw_customer_active.html")
    assert seen["errors"] == [] and seen["search"]["hits"] == ["sales.vw_customer_active"]


def column_rows(root: Path, name: str, levels: int) -> int:
    """The rows the column lineage table around `name` has: for each view within `levels` of it, each
    column whose values come from an object within them, as the landscape's validation found them."""
    from reconciler.planning.environment import Workspace
    landscape = Workspace(root).load("dev")
    key = next(node for node in landscape.lineage if str(node) == name)
    near = {*nx.single_source_shortest_path_length(landscape.lineage, key, cutoff=levels),
            *nx.single_source_shortest_path_length(landscape.lineage.reverse(), key, cutoff=levels)}
    return sum(1 for view in near & landscape.derived.keys() for sources in landscape.derived[view].values()
               if any(source in near for source, _ in sources))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.found += [value for name, value in attrs if name in ("href", "src") and value]


def links(site: Path, whole: bool = False) -> list[tuple[str, str]]:
    """(page, file it links to) for every link of every page to another file of the site, decoded (`whole`:
    the address as written, what it asks of the page too)."""
    found = []
    for page in site.rglob("*.html"):
        parser = _Links()
        parser.feed(page.read_text())
        found += [(page.relative_to(site).as_posix(), href if whole else unquote(href.split("#")[0].split("?")[0]))
                  for href in parser.found if not href.startswith("#")]
    return found


def boxes(site: Path, environment: str) -> set[str]:
    """The objects of the environment's graph file, which its lineage page draws from."""
    text = (site / "assets" / f"lineage-{environment}.js").read_text()
    return {box[0] for box in json.loads(text[text.index("] = ") + 4:].removesuffix(";\n"))["boxes"]}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def test_a_name_in_a_pictures_data_cannot_end_its_script_element() -> None:
    hostile = ObjectKey("sales", "x</script><script>alert(1)</script>")
    reader = ObjectKey("sales", "reader")
    lineage = nx.DiGraph([(hostile, reader)])
    nx.set_node_attributes(lineage, "View", "kind")

    text = drawn_in_browser(drawing.picture(lineage, set(lineage), {reader: "focus"}), "picture", 1)

    assert text.count("</script>") == 3 and "<script>alert" not in text   # the data's and the two scripts'
    data = json.loads(text[text.index(">") + 1:text.index("</script>")])
    assert data["boxes"][1][:2] == [str(hostile), str(hostile)] and data["edges"] == [[str(hostile), str(reader)]]


@pytest.mark.parametrize("schemas_read_each_other", [False, True], ids=["schemas in order", "schemas in a cycle"])
def test_a_neighbourhood_beyond_the_collapse_size_is_drawn_as_the_server_draws_it_and_the_address_is_only_text(
        tmp_path: Path, schemas_read_each_other: bool) -> None:
    """The lineage page around an object draws what the address asks from the landscape's files: past
    drawing.COLLAPSE_AT objects one box a schema, the boxes, labels and edges `drawing.picture` makes on
    the server (no edge at all where schemas read each other); a schema may be named as any of a
    script's own properties; an object the address names that is markup is shown as that text."""
    hub = ObjectKey("calendar", "dim_date")
    readers = [ObjectKey(("mart_0", "constructor", "tostring", "__proto__")[i % 4], f"view_{i:03d}")
               for i in range(drawing.COLLAPSE_AT + 20)]
    lineage = nx.DiGraph([(hub, reader) for reader in readers])
    if schemas_read_each_other:
        lineage.add_edge(readers[0], ObjectKey("calendar", "holidays"))
    nx.set_node_attributes(lineage, "View", "kind")
    lineage.nodes[hub]["kind"] = "Table"
    landscape = SimpleNamespace(name="dev", lineage=lineage, derived={readers[0]: {"day": ((hub, "date_day"),)}})
    site = tmp_path / "site"
    shipped = resources.files("reconciler.views") / "site_assets"
    made = {f"assets/{name}": (shipped / name).read_text() for name in ASSETS} | {
        shared_graph_href("dev", 0): site_lineage.shared_graph(landscape),
        column_lineage_href("dev", 0): site_lineage.column_lineage(landscape),
        around_path("dev"): site_lineage.around_page(landscape, "now")}
    for relative, text in made.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(text)
    hub_page = "lineage/dev.html?object=calendar.dim_date&levels=2"
    hostile = "lineage/dev.html?object=" + quote("<img src=x onerror=alert(1)>", safe="") + "&levels=2"

    seen = walk(site, artefacts(tmp_path, "site-collapsed"), "", "", hub_page, hostile)

    assert seen["errors"] == []
    assert_true_pictures(seen)
    around = seen["pages"][hub_page]
    near = set(lineage)
    server = drawing.picture(lineage, near)
    assert [p["drawn"] for p in around["pictures"]] == [{
        "ids": [box[0] for box in server["boxes"]], "labels": [box[1] for box in server["boxes"]],
        "pairs": server["edges"]}]
    assert len(server["boxes"]) == 5 and len(server["edges"]) == (0 if schemas_read_each_other else 4)
    assert around["said"] == (f"Environment dev: {len(near)} objects within 2 levels of calendar.dim_date, "
                              "drawn one box a schema, arrows the way data flows.")
    assert around["column_rows"] == 1 and around["title"] == "Lineage of calendar.dim_date ±2 · reconciler"
    assert seen["pages"][hostile]["said"] == "Environment dev has no object <img src=x onerror=alert(1)>."
    assert seen["pages"][hostile]["pictures"] == [] and seen["pages"][hostile]["column_rows"] == 0


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "environments").rglob("*.yaml") if "\nsql:" in p.read_text()),
                         ids=lambda p: p.relative_to(ROOT / "environments").as_posix())
def test_highlighted_sql_reads_back_as_the_sql_written(path: Path) -> None:
    """What a browser shows of highlighted SQL (its text, markup dropped) is the SQL as written, every
    character; and keywords are marked where the dialect's tokenizer finds them."""
    import yaml
    document = yaml.safe_load(path.read_text())
    shown = highlighted(document["sql"], "duckdb")
    parser = _Text()
    parser.feed(shown)
    assert "".join(parser.parts) == document["sql"]
    assert '<span class="k">SELECT</span>' in shown or '<span class="k">INSERT</span>' in shown


@pytest.mark.skipif(GENERATOR is None, reason="the landscape generator lives in ../shared/bench (CI has it)")
def test_a_generated_thousand_object_landscape_is_searchable_and_drawn_true(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(GENERATOR), "--objects", "1000", "--out", str(tmp_path / "gen")], check=True,
                   capture_output=True)
    landscape = Landscape(tmp_path / "gen" / "landscape")
    landscape.commit("a generated landscape")
    site = tmp_path / "site"

    assert landscape.run("site", "--out", str(site)).code == 0

    objects = sorted(p.stem for p in (site / "objects").glob("*.html"))
    assert len(objects) == 1000
    index = json.loads((site / "assets" / "search-index.js").read_text().removeprefix(
        "window.RECONCILER_SEARCH = ").removesuffix(";\n"))
    edges = json.loads(landscape.run("graph", "dev", "--format", "json").stdout)["edges"]
    table, reader = next((e["from"], e["to"]) for e in edges if any(
        entry["label"] == e["from"] and entry["what"] == "Table" for entry in index))
    column = next(entry["label"] for entry in index if entry["label"].startswith(table + "."))
    seen = walk(site, artefacts(tmp_path, "site-1000"), column, table, "lineage.html",
                f"objects/{reader}.html", f"lineage/dev.html?object={reader}&levels=2")
    assert seen["errors"] == []
    assert seen["search"]["focused"] == column and seen["search"]["opened"] == f"{table}.html"
    assert seen["followed"]["edge"][0] == table and seen["followed"]["h1"] == seen["followed"]["edge"][1]
    assert_true_pictures(seen)
    # drawn in the browser from the page's data: every object within the levels and every edge among them
    lineage = nx.DiGraph([(e["from"], e["to"]) for e in edges])
    for page, levels in ((f"objects/{reader}.html", 1), (f"lineage/dev.html?object={reader}&levels=2", 2)):
        near = {*nx.single_source_shortest_path_length(lineage, reader, cutoff=levels),
                *nx.single_source_shortest_path_length(lineage.reverse(), reader, cutoff=levels)}
        drawn = [(p["boxes"], p["edges"]) for p in seen["pages"][page]["pictures"]]
        assert drawn == [(len(near), lineage.subgraph(near).number_of_edges())], page
        assert drawn[0][1] > 0, page
    assert seen["pages"][f"lineage/dev.html?object={reader}&levels=2"]["column_rows"] == column_rows(
        landscape.root, reader, 2) > 0


def test_the_site_of_some_environments_shows_only_them_and_an_unknown_one_is_a_usage_error(
        landscape: Landscape, tmp_path: Path) -> None:
    assert landscape.run("site", "prod", "qa", "--out", str(tmp_path / "site")).code == 0
    index = (tmp_path / "site" / "index.html").read_text()
    assert "<td>qa</td>" in index and "<td>prod</td>" in index and "<td>dev</td>" not in index
    assert "<b>qa → prod</b>" in index and "dev → qa" not in index   # landscape order, whatever the order asked

    unknown = landscape.run("site", "nope", "--out", str(tmp_path / "other"))

    assert unknown.code == 64 and "nope" in unknown.stderr and "Traceback" not in unknown.output
    assert not (tmp_path / "other").exists()


def test_the_site_reads_each_engines_audit(engine_landscape) -> None:
    """`Adapter.audit` on DuckDB and on a real PostgreSQL: the runs, and each check's result on its object's
    page, as the tenant recorded them."""
    landscape = engine_landscape
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.run("check", "dev").code == 0
    site = landscape.root / "site"

    assert landscape.run("site", "dev", "--out", str(site)).code == 0

    runs = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    assert len(runs) == 2 and all((site / "runs" / f"{r['run_id']}.html").is_file() for r in runs)
    segmentation = (site / "objects" / "sales.vw_customer_segmentation.html").read_text()
    assert segmentation.count("<td>platinum_means_revenue</td><td>passed</td>") == 2   # the apply's, the check's


def test_a_tenant_that_cannot_be_read_is_a_row_that_says_why_and_the_rest_is_built(landscape: Landscape,
                                                                                       tmp_path: Path) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                               "print('ready', flush=True); sys.stdin.read()", str(landscape.tenant())],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = landscape.run("site", "--out", str(tmp_path / "site"))
    finally:
        holder.kill()
        holder.wait()

    assert result.code == 0, result.output
    index = (tmp_path / "site" / "index.html").read_text()
    assert "<td>dev</td><td>dev</td><td>-</td><td>-</td><td>-</td><td>tenant dev (" in index   # not "never applied"
    assert f"is locked by process {holder.pid}</td>" in index
    assert "<td>qa</td><td>qa</td><td>never applied</td><td>9</td>" in index
    assert len(list((tmp_path / "site" / "objects").glob("*.html"))) == 11


def test_a_folder_the_site_cannot_be_written_to_is_an_error_that_says_which(landscape: Landscape,
                                                                             tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")

    result = landscape.run("site", "--out", str(tmp_path / "a-file" / "site"))

    assert result.code == 1 and "Traceback" not in result.output
    assert f"cannot write the site to {tmp_path / 'a-file' / 'site'}: Not a directory" in result.stderr


def test_a_link_inside_the_site_folder_is_never_written_through(landscape: Landscape, tmp_path: Path) -> None:
    """A checkout can hold a symbolic link where a page goes: the site refuses it, and writes nothing
    into the folder the link points at."""
    elsewhere, site_folder = tmp_path / "elsewhere", tmp_path / "site"
    elsewhere.mkdir()
    site_folder.mkdir()
    (site_folder / "objects").symlink_to(elsewhere)

    result = landscape.run("site", "--out", str(site_folder))

    assert result.code == 1 and "Traceback" not in result.output, result.output
    assert "is a symbolic link" in result.stderr
    assert list(elsewhere.iterdir()) == []


@pytest.mark.timeout(300)   # a FIFO written to blocks until read: a regression hangs, not for half an hour
def test_a_link_where_a_page_goes_is_replaced_never_written_through(landscape: Landscape, tmp_path: Path) -> None:
    """A symbolic link a checkout put where a page goes, a hard link to a file elsewhere, a FIFO (which
    would hold the command until something read it): each is replaced by the page; the file linked
    keeps its bytes."""
    victim, site_folder = tmp_path / "victim.txt", tmp_path / "site"
    victim.write_text("not the site's")
    (site_folder / "objects").mkdir(parents=True)
    index, master = site_folder / "index.html", site_folder / "objects" / "sales.customer_master.html"
    index.symlink_to(victim)
    master.symlink_to(victim)
    runs = site_folder / "runs.html"
    os.link(victim, runs)
    pending = site_folder / "pending.html"
    os.mkfifo(pending)

    result = landscape.run("site", "--out", str(site_folder))

    assert result.code == 0, result.output
    assert victim.read_text() == "not the site's"
    for page in (index, master, runs, pending):
        assert page.is_file() and not page.is_symlink() and page.stat().st_nlink == 1, page
        assert "<html" in page.read_text()
