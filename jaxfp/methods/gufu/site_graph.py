"""The site graph GUFU's GNN reads (§4.2, §5.1): sample and AP nodes, a sample node's features,
its virtual edges, and the reference points records share. Choices, one line each:

- a sample node's features = its 32-d code ⊕ its location scaled by the database's centre and
  spread (`LocationScale`); a location is whatever the protocol gives, (x, y) or (x, y, height
  of the floor).
- virtual edges: cosine similarity > threshold, at most `max_virtual_per_node` per sample
  (memory), on code ⊕ location (`virtual_features="code_location"`, the paper's node features)
  or on the code alone ("code", ours: a new sample's location is a guess).
- `old_new_per_new` = k > 0 (ours) joins old and new samples apart from the rest: each new sample
  to its k most similar records above the threshold, with `virtual_one_per_point` one record per
  reference point; 0 lets old-new pairs compete with every other pair for the per-node cap.
"""

from __future__ import annotations

from typing import NamedTuple

import ml_collections
import numpy as np
import scipy.sparse

from jaxfp.graphs import bipartite


class LocationScale(NamedTuple):
    """The database's location centre and spread (fixed: records keep their places)."""

    centre: np.ndarray
    spread: float

    @classmethod
    def of(cls, xy: np.ndarray, spread: str = "centred") -> LocationScale:
        """`spread`: "centred", the standard deviation of the centred locations; "values", that of
        the values as they come, which adds the spread of the axes' means (on UTM coordinates
        millions of metres, putting every record on one point)."""
        values = xy - xy.mean(0) if spread == "centred" else xy
        return cls(xy.mean(0), max(float(values.std()), 1e-6))

    def scaled(self, xy: np.ndarray) -> np.ndarray:
        return ((xy - self.centre) / self.spread).astype(np.float32)

    def places(self, scaled: np.ndarray) -> np.ndarray:
        return scaled * self.spread + self.centre


def node_features(codes: np.ndarray, scaled_xy: np.ndarray) -> np.ndarray:
    """A sample node's features: its code ⊕ its scaled location."""
    return np.concatenate([codes, scaled_xy], 1)


def pairs_follow_locations(g: ml_collections.ConfigDict) -> bool:
    """Whether the virtual pairs depend on the samples' locations (not only their codes)."""
    return bool(g.virtual_edges) and g.virtual_features == "code_location"


def reference_points(xy: np.ndarray) -> np.ndarray:
    """(S,) the reference point of each record (records sharing a place share a point)."""
    return np.unique(np.round(xy, 2), axis=0, return_inverse=True)[1].ravel()


def links_of_points(links: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(old, new) links extended to every record at the linked record's point."""
    s, n = len(points), int(links[:, 1].max(initial=-1)) + 1
    member = scipy.sparse.csr_matrix((np.ones(s), (np.arange(s), points)))
    linked = scipy.sparse.csr_matrix(
        (np.ones(len(links)), (links[:, 0], links[:, 1])), shape=(s, max(n, 1))
    )
    spread = (member @ (member.T @ linked)).tocoo()
    return np.column_stack([spread.row, spread.col]).astype(np.int64)


def site_graph(
    g: ml_collections.ConfigDict,
    rss: np.ndarray,
    ap_ids: np.ndarray,
    codes: np.ndarray,
    features: np.ndarray,
    points: np.ndarray | None,
    num_old: int | None = None,
    records_pairs: np.ndarray | None = None,
) -> bipartite.SiteGraph:
    """The site graph over `rss` with node `features`; with `num_old`, rows from `num_old` on are
    a batch's new samples, each linked to at most one record per reference point of `points`
    (None: no such limit), and `records_pairs` (when given) are the records' own virtual pairs,
    kept from the graph the records were last trained on (same records, same encoder)."""
    graph = bipartite.build_site_graph(rss, ap_ids, features)
    if not g.virtual_edges:
        return graph
    similar = features if pairs_follow_locations(g) else codes
    threshold, cap, per_new = g.virtual_threshold, g.max_virtual_per_node, g.old_new_per_new
    if num_old is None or per_new == 0:
        return graph._replace(virtual=bipartite.similar_pairs(similar, threshold, cap))
    if records_pairs is None:
        records_pairs = bipartite.similar_pairs(similar[:num_old], threshold, cap)
    virtual = [
        records_pairs,
        num_old + bipartite.similar_pairs(similar[num_old:], threshold, cap),
        bipartite.old_new_pairs(similar, num_old, threshold, per_new, points),
    ]
    return graph._replace(virtual=np.concatenate(virtual))
