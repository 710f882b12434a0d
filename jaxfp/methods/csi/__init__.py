"""The CSI positioning paper: backbones (Table I), few-label methods (Table II, Fig. 4), ensembles
and sector heads, on a ray-traced CSI set (`datagen`)."""
