"""GUFU's AP changes (§6): new AP nodes from the batch, edge prediction between them and the
records, forgetting of edges and of APs left without any. Choices, one line each:

- edge weights: `edge_weights="goodness_fairness"` (the paper, eq. 11-12 and Algorithm 2, new
  edges only to the batch's new APs) or "neighbour_readings" (ours: from the batch samples
  virtually linked to a record -- an edge goes when at most `readings_keep_share` of them hear
  its AP, one comes when `readings_add_share` do, at their mean reading, for new APs or with
  `readings_any_ap` any AP; `readings_blend` moves a confirmed edge towards their reading;
  `readings_per_point` judges every record at a linked record's reference point alike, so a
  point's map moves as one; `readings_forget_min_links` = k forgets an AP no batch sample hears
  though k of them are linked to records hearing it). See `jaxfp.graphs.edge_prediction`.
- the threshold is `edge_prediction.default_threshold` at `edge_floor_dbm`.
- the batch's sample nodes leave the graph afterwards; an AP left without edges leaves the
  database.
"""

from __future__ import annotations

from typing import Any

import ml_collections
import numpy as np

from jaxfp.graphs import bipartite, edge_prediction
from jaxfp.methods.gufu.site_graph import links_of_points
from jaxfp.methods.gufu.update_module import crossing_pairs


def align_columns(rss: np.ndarray, ap_ids: np.ndarray, target_ids: np.ndarray) -> np.ndarray:
    """`rss` (rows over `ap_ids`) over `target_ids`; NaN for the APs `ap_ids` lacks."""
    column = {ap: i for i, ap in enumerate(ap_ids.tolist())}
    index = np.array([column.get(ap, -1) for ap in target_ids.tolist()], np.int64)
    picked = rss[:, np.maximum(index, 0)] if len(index) else rss[:, :0]
    return np.where(index[None] >= 0, picked, np.nan).astype(np.float32)


def apply_ap_changes(
    g: ml_collections.ConfigDict,
    ap_ids: np.ndarray,
    rss: np.ndarray,
    points: np.ndarray,
    new_rss: np.ndarray,
    new_ap_ids: np.ndarray,
    graph: bipartite.SiteGraph,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """§6 on the records (`rss` over `ap_ids`, at reference `points`) after a batch (`new_rss`
    over `new_ap_ids`) joined `graph`: returns the new AP ids, the records' RSS over them and
    what changed."""
    s = len(rss)
    known = set(ap_ids.tolist())
    fresh = [i for i, ap in enumerate(new_ap_ids.tolist()) if ap not in known]
    fresh = [i for i in fresh if np.isfinite(new_rss[:, i]).any()]
    all_ids = np.concatenate([ap_ids, new_ap_ids[fresh]])
    batch_rss = align_columns(new_rss, new_ap_ids, all_ids)
    old_rss = np.concatenate([rss, np.full((s, len(fresh)), np.nan, np.float32)], 1)
    full = bipartite.build_site_graph(
        np.concatenate([old_rss, batch_rss]), all_ids, graph.sample_features
    )._replace(virtual=graph.virtual)
    threshold = edge_prediction.default_threshold(full, g.edge_floor_dbm)
    new_aps = np.arange(len(ap_ids), len(all_ids))
    if g.edge_weights == "goodness_fairness":
        result = edge_prediction.update_edges(full, threshold, addable_aps=new_aps)
    else:
        links = crossing_pairs(graph.virtual, s)
        if g.readings_per_point:
            links = links_of_points(links, points)
        result = edge_prediction.update_edges_from_readings(
            full,
            links,
            s,
            addable_aps=None if g.readings_any_ap else new_aps,
            add_share=g.readings_add_share,
            keep_share=g.readings_keep_share,
            blend=g.readings_blend,
            forget_min_links=g.readings_forget_min_links,
        )
    kept_rss = result.graph.rss()[:s]  # the batch's sample nodes leave the graph
    alive = np.isfinite(kept_rss).any(0)
    kept_ids, kept_rss = result.graph.ap_ids[alive], kept_rss[:, alive]
    changes = {
        "aps_added": int(np.isin(new_ap_ids[fresh], kept_ids).sum()),
        "aps_removed": int(len(known - set(kept_ids.tolist()))),
        "edges_added": result.added,
        "edges_removed": result.removed,
        "new_aps_heard": len(fresh),
        "edges_added_per_new_ap": float(result.added_per_ap[new_aps].mean()) if len(fresh) else 0.0,
        "aps_losing_edges": int((result.removed_per_ap > 0).sum()),
    }
    return kept_ids, kept_rss, changes
