"""The docs keep their promises: tables rendered from results files, code references that resolve,
a short README and no history in the words users read."""

import importlib
import pathlib
import re

import pytest

from jaxfp.eval import docs_tables
from jaxfp.eval.results import read_results, render

REPO = pathlib.Path(__file__).resolve().parents[1]
DOCS = docs_tables.markdown_files(str(REPO / "docs"))
METHOD_DOCS = sorted((REPO / "docs" / "methods").glob("*.md"))
RESULTS = sorted((REPO / "docs" / "results").glob("*.json"))
CODE_REF = re.compile(r"`(jaxfp(?:\.\w+)+):([\w.]+)`")


def test_every_method_has_its_doc():
    names = {p.stem for p in METHOD_DOCS}
    assert {"comgan", "csi", "fpn", "gufu", "itoloc"} <= names
    for name in ("performance", "training", "datagen", "data"):
        assert (REPO / "docs" / f"{name}.md").is_file()


def test_every_docs_table_is_its_results_file_rendered():
    assert docs_tables.stale(DOCS) == []
    referenced = {
        (pathlib.Path(doc).parent / path).resolve()
        for doc in DOCS
        for path, _ in docs_tables.blocks(doc)
    }
    for results in RESULTS:  # every results file renders and is shown somewhere
        assert render(read_results(str(results)), markdown=True)
        assert results.resolve() in referenced, f"{results} is not shown in any doc"


def test_method_docs_have_no_hand_written_result_tables():
    # A table in a method doc is either a results block or the component table.
    for doc in METHOD_DOCS:
        text = re.sub(r"<!-- results: .*?<!-- /results -->", "", doc.read_text(), flags=re.S)
        headers = [
            line for line in text.splitlines() if line.startswith("| ") and "---" not in line
        ]
        tables = [h for h in headers if re.match(r"\| *paper", h)]
        assert len(tables) <= 1, f"{doc.name}: more than one component table"


@pytest.mark.parametrize("doc", METHOD_DOCS, ids=lambda p: p.stem)
def test_component_tables_name_code_that_exists(doc):
    refs = CODE_REF.findall(doc.read_text())
    assert len(refs) >= 5, f"{doc.name}: expected a component table naming the code"
    for module_name, attr_path in refs:
        obj = importlib.import_module(module_name)
        for part in attr_path.split("."):
            assert hasattr(obj, part), f"{doc.name}: {module_name}:{attr_path} does not resolve"
            obj = getattr(obj, part)


def test_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    text = "\n".join(lines)
    assert "bash scripts/demo.sh" in text and "bash scripts/test.sh" in text
    for doc in METHOD_DOCS:
        assert f"docs/methods/{doc.name}" in text


def test_no_history_in_the_words_users_read():
    history = re.compile(r"[Ii]ssue [0-9]+|[Ss]itting|[Ss]ession [0-9]")
    for path in [REPO / "README.md", *map(pathlib.Path, DOCS)]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not history.search(line), f"{path}:{number}: {line}"
