"""The sizes GUFU pads to: its graphs, the old-new pair list of the update module, and the
autoencoder's AP axis. A compiled step is reused exactly when its padded shapes repeat, so a padded
size is kept while the count still fits it and fills more than half of it; a fresh one leaves
headroom where the count grows from update to update (graph edges, APs).

Why each budget exists: the records' graph gains ~8 % of its edges an update on the 10,000-node
bench (new APs' edges), and budgets fitted each time recompiled the GNN's training step every
update (~4 s); an update that adds or swaps APs inside the autoencoder's padded width reuses its
compiled step."""

from __future__ import annotations

from jaxfp.common.sizes import rounded


def fits(count: int, budget: int) -> bool:
    """A padded size is kept while `count` fits it and fills more than half of it."""
    return count <= budget < 2 * count


def with_headroom(count: int) -> int:
    """`count` plus 25 %: sizes that grow from update to update (edges, APs) start with room."""
    return count + count // 4


def graph_budgets(nodes: int, edges: int, last: tuple[int, int], multiple: int) -> tuple[int, int]:
    """(node, edge) budgets for a graph: the last ones while both fit, else fresh ones (the
    edges' with headroom)."""
    if fits(nodes, last[0]) and fits(edges, last[1]):
        return last
    return rounded(nodes, multiple), rounded(with_headroom(edges), multiple)


def autoencoder_width(aps: int, current: int) -> int:
    """The autoencoder's input width for `aps` APs: the current width while it fits, else the AP
    count with headroom rounded to a multiple of 8 (zero inputs, outputs masked from the loss)."""
    return current if fits(aps, current) else rounded(with_headroom(aps), multiple=8)


def pairs_budget(pairs: int, multiple: int, last: int = 0) -> int:
    """The old-new pair list's padded length (padding pairs weigh 0 in eq. 7-8): the last one
    while the count fits it (counts rise and fall from update to update), else `pairs` rounded
    up to `multiple`."""
    return last if fits(pairs, last) else rounded(pairs, multiple)
