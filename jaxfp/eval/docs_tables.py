"""Result tables in the docs, rendered from results files: a markdown document holds

    <!-- results: ../results/comgan_synthetic.json -->
    (the file's tables as `jaxfp report --markdown` renders them)
    <!-- /results -->

with the path relative to the document; `<!-- results: PATH tables: main; paired differences -->`
keeps the main table and the extra tables whose captions start with one of the other entries
(`;`-separated). `update` rewrites every block from its file; `stale` lists the blocks that differ
from their file (a test keeps the docs and the results files in step).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from jaxfp.common.atomic_files import write_text
from jaxfp.eval.results import read_results, render

BLOCK = re.compile(
    r"(<!-- results: (?P<path>\S+)(?: tables: (?P<only>[^\n]*?))? -->\n)(?P<body>.*?)\n?"
    r"<!-- /results -->",
    re.S,
)
END = "\n<!-- /results -->"


def rendered(doc: str, relative: str, only: str | None = None) -> str:
    """The markdown tables of the results file `relative` (relative to the document `doc`);
    `only`: a block's `tables:` list."""
    kept = None if only is None else [t.strip() for t in only.split(";") if t.strip()]
    path = os.path.join(os.path.dirname(doc), relative)
    return render(read_results(path), markdown=True, only=kept)


def _matches(doc: str) -> list[re.Match[str]]:
    with open(doc) as f:
        return list(BLOCK.finditer(f.read()))


def blocks(doc: str) -> list[tuple[str, str]]:
    """(results path as written, current body) of every results block in `doc`."""
    return [(m["path"], m["body"]) for m in _matches(doc)]


def stale(docs: Iterable[str]) -> list[str]:
    """'doc: path' for every block whose body differs from its results file's rendering."""
    return [
        f"{doc}: {m['path']}"
        for doc in docs
        for m in _matches(doc)
        if m["body"].strip() != rendered(doc, m["path"], m["only"]).strip()
    ]


def update(docs: Iterable[str]) -> list[str]:
    """Rewrite every results block of `docs` from its file; returns the documents changed."""
    changed = []
    for doc in docs:
        with open(doc) as f:
            text = f.read()
        new = BLOCK.sub(lambda m, d=doc: m[1] + rendered(d, m["path"], m["only"]) + END, text)
        if new != text:
            write_text(doc, new)
            changed.append(doc)
    return changed


def markdown_files(root: str) -> list[str]:
    """Every .md file under `root` (a docs folder), sorted."""
    return sorted(
        os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.endswith(".md")
    )
