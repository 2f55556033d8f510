"""Golden cases: one folder per scenario under tests/cases/, walked by two parametrised tests.

cases/invalid/<case>/: `files/` laid over the demo landscape, optional `remove.txt`
(paths to delete), `links.txt` (symbolic links to make) and `args.txt` (the command, default
`validate dev`); `expected.txt`
is what the command prints on stderr. Every case must exit 1 (or the code `exit.txt` holds: 64 where an
argument names what does not exist) and leave the tenant as it was.

cases/plan/<case>/: after the demo's dev environment is applied, `setup.sql` runs on the
tenant (drift, unmanaged objects), `files/` and `remove.txt` edit the folder; `expected.txt`
is the text plan. cases/markdown/<case>/: the same, and `expected.md` is the markdown plan
(the pull request comment) with the review hash written as <hash>. Unless `refused.txt` says the apply is refused (its content is the exit
code), applying it must converge: the next plan is empty.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import Landscape, snapshot

CASES = Path(__file__).parent / "cases"
UPDATE = bool(os.environ.get("RECONCILER_UPDATE_GOLDEN"))  # rewrite expected.txt files, then review the diff


def _expect(case: Path, actual: str, name: str = "expected.txt") -> str:
    if UPDATE:
        (case / name).write_text(actual)
    return (case / name).read_text()


def _cases(kind: str) -> list[Path]:
    return sorted(p for p in (CASES / kind).iterdir() if p.is_dir())


def _prepare(landscape: Landscape, case: Path) -> None:
    if (case / "setup.sql").exists():
        landscape.sql((case / "setup.sql").read_text())
    if (case / "remove.txt").exists():
        for line in (case / "remove.txt").read_text().split():
            target = landscape.path(line)
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    if (case / "files").exists():
        shutil.copytree(case / "files", landscape.root, dirs_exist_ok=True)
    if (case / "links.txt").exists():  # `path target` per line: symbolic links git cannot carry here
        for line in (case / "links.txt").read_text().splitlines():
            path, target = line.split()
            landscape.path(path).symlink_to(target)


def _normalise(text: str, landscape: Landscape) -> str:
    return text.replace(str(landscape.root), "<repo>")


@pytest.mark.parametrize("case", _cases("invalid"), ids=lambda p: p.name)
def test_invalid_input_is_reported_and_changes_nothing(landscape: Landscape, case: Path) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    before = snapshot(landscape.tenant())
    _prepare(landscape, case)
    args = (case / "args.txt").read_text().split() if (case / "args.txt").exists() else ["validate", "dev"]

    code = int((case / "exit.txt").read_text()) if (case / "exit.txt").exists() else 1

    result = landscape.run(*args)

    assert result.code == code, result.output
    assert _normalise(result.stderr, landscape) == _expect(case, _normalise(result.stderr, landscape))
    ref = args[args.index("--ref"):args.index("--ref") + 2] if "--ref" in args else []
    assert landscape.run("apply", args[1], "--yes", *ref).code == code
    assert snapshot(landscape.tenant()) == before


@pytest.mark.parametrize("case", _cases("plan"), ids=lambda p: p.name)
def test_plan_matches_golden_and_apply_converges(landscape: Landscape, case: Path) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.customer_master VALUES (1, 'Ada', 'ada@example.com', 'EU', 'ACTIVE', "
                  "TIMESTAMP '2024-01-01'), (2, 'Bob', NULL, 'US', 'ACTIVE', NULL)")
    _prepare(landscape, case)

    result = landscape.run("plan", "dev")

    assert result.code == 0, result.output
    body = result.stdout.split("\n", 1)[1]  # the first line names the commit, which differs per run
    assert body == _expect(case, body)
    refused = (case / "refused.txt").read_text().strip() if (case / "refused.txt").exists() else None
    applied = landscape.run("apply", "dev", "--yes")
    if refused:
        assert applied.code == int(refused), applied.output
        return
    assert applied.code == 0, applied.output
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


@pytest.mark.parametrize("case", _cases("markdown"), ids=lambda p: p.name)
def test_markdown_plan_matches_golden(landscape: Landscape, case: Path) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.customer_master VALUES (1, 'Ada', 'ada@example.com', 'EU', 'ACTIVE', "
                  "TIMESTAMP '2024-01-01'), (2, 'Bob', NULL, 'US', 'ACTIVE', NULL); INSERT INTO "
                  "sales.customer_transactions VALUES (10, 1, 25.00, 'EUR', 'web', NULL)")
    _prepare(landscape, case)

    result = landscape.run("plan", "dev", "--format", "markdown")

    assert result.code == 0, result.output
    body = re.sub(r"(review.hash[ =`]+)[0-9a-f]{12,64}", r"\1<hash>", result.stdout)
    assert body == _expect(case, body, "expected.md")


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "svg"])
def test_graph_formats_match_golden(landscape: Landscape, fmt: str) -> None:
    result = landscape.run("graph", "dev", "--format", fmt)
    assert result.code == 0, result.output
    name = {"mermaid": "expected.mmd", "dot": "expected.dot", "svg": "expected.svg"}[fmt]
    assert result.stdout == _expect(CASES / "graph" / "demo_dev", result.stdout, name)


@pytest.mark.parametrize("args, code, kind", [
    (("plan", "dve", "--format", "json"), 64, "UnknownEnvironment"),
    (("plan", "dev", "--format", "json", "--tenant", "dve"), 64, "UsageProblem"),
    (("plan", "dev", "--format", "json"), 1, "InvalidInput"),
], ids=["unknown environment", "unknown tenant", "invalid file"])
def test_a_plan_that_fails_in_json_answers_stdout_with_the_error(landscape: Landscape, args: tuple, code: int,
                                                                 kind: str) -> None:
    """A program reading `plan --format json` from stdout gets an error object, not nothing; stderr and
    the exit code say it as for every format."""
    if kind == "InvalidInput":
        landscape.write("environments/dev/sales/extra.yaml", "kind: Table\nname: extra\nschema: sales\n"
                                                             "descripton: x\ncolumns: [{name: id, type: BIGINT}]\n")
    result = landscape.run(*args)
    assert result.code == code, result.output
    error = json.loads(result.stdout)["error"]
    assert (error["kind"], error["exit_code"]) == (kind, code) and error["message"] in result.stderr
    if kind == "InvalidInput":
        assert error["diagnostics"] == [{"file": "environments/dev/sales/extra.yaml", "line": 4, "column": 13,
                                         "code": "schema", "message": "unknown field 'descripton' "
                                                                      "(did you mean description?)"}]
