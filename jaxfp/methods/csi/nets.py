"""The CSI models: a backbone's pooled features under position heads — one 2-D head, several
(one per sector), and an optional grid-cell classifier (FixMatch's confidence needs class
probabilities)."""

from __future__ import annotations

import flax.linen as nn
import jax


class PositionHeads(nn.Module):
    """`backbone` must return pooled features (built with outputs=None).

    Returns {'xy': (batch, num_heads, 2), 'features': (batch, F)} and 'logits' (batch, num_cells)
    when num_cells > 0. The heads share the backbone (CSI paper, Fig. 3 block B).
    """

    backbone: nn.Module
    num_heads: int = 1
    num_cells: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        features = self.backbone(x, train=train)
        xy = nn.Dense(2 * self.num_heads, name="xy_heads")(features)
        out = {"xy": xy.reshape(*xy.shape[:-1], self.num_heads, 2), "features": features}
        if self.num_cells:
            out["logits"] = nn.Dense(self.num_cells, name="cell_head")(features)
        return out
