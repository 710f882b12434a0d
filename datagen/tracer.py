"""Sionna RT: the scene, the arrays, and CSI of a batch of receivers served by one sector.

One transmitter stands at the BS and is turned to the batch's sector (batches never mix sectors), so
each solve traces one source. Sionna's candidate generator stores at most `max_num_paths_per_src`
candidate paths per source over all receivers of a call and silently drops the rest; the tracer
counts the candidates of every call (Sionna exposes no public counter, so it wraps the solver's
candidate generator) and splits a batch whose count reaches `cap_fraction` of the cap.
Sionna's candidate deduplication also drops paths silently when one call traces many receivers (with
10,000 rays and depth 3: calls of 100 lost 2.7% of the paths with a 1e6 cap, calls of 25 about 1%,
calls of 5 none against calls of 1; datagen/config.py). So receivers are traced 5 per call, and every
`spot_check_every`-th batch is traced again `spot_check_batch` receivers per call: a receiver that
gains paths there is a detected drop; the batch keeps that result and the summary reports the count.
"""

from __future__ import annotations

import logging

import numpy as np

LOG = logging.getLogger("datagen")


class _CandidateCounter:
    """Wraps the solver's candidate generator and records how many candidates it stored."""

    def __init__(self, generator) -> None:
        self.generator, self.count = generator, 0

    def __call__(self, *args, **kwargs):
        buffer = self.generator(*args, **kwargs)
        self.count = int(np.asarray(buffer.paths_counter).max())
        return buffer


class Tracer:
    def __init__(self, config) -> None:
        import mitsuba as mi

        if config.variant != "auto":
            mi.set_variant(config.variant)
        import sionna.rt as rt

        self._rt, self._mi, self.config = rt, mi, config
        self.scene = rt.load_scene(getattr(rt.scene, config.scene))
        self.scene.frequency = config.frequency_hz
        self.scene.tx_array = self._array(config.bs_array)
        self.scene.rx_array = self._array(config.ue_array)
        self.tx = rt.Transmitter("bs", position=[float(v) for v in config.bs_position])
        self.scene.add(self.tx)
        self.solver = rt.PathSolver(deterministic=config.deterministic)
        self.candidates = _CandidateCounter(self.solver._candidate_generator)
        self.solver._candidate_generator = self.candidates
        spacing = config.subcarrier_spacing_hz * config.srs_comb
        self.frequencies = rt.subcarrier_frequencies(config.num_subcarriers, spacing)
        self.max_path_share = 0.0  # largest share of the candidate cap one call used
        self.splits = 0
        self.spot_checks = 0
        self.spot_check_mismatches = 0

    def _array(self, spec):
        return self._rt.PlanarArray(
            num_rows=spec.num_rows,
            num_cols=spec.num_cols,
            vertical_spacing=spec.spacing,
            horizontal_spacing=spec.spacing,
            pattern=spec.pattern,
            polarization=spec.polarization,
        )

    @property
    def csi_shape(self) -> tuple[int, int, int]:
        return (
            self.scene.rx_array.num_ant,
            self.scene.tx_array.num_ant,
            self.config.num_subcarriers,
        )

    def is_outdoor(self, xy: np.ndarray) -> np.ndarray:
        """True where a ray cast down from high above reaches the ground below the UE height."""
        mi = self._mi
        n = len(xy)
        origin = mi.Point3f(
            xy[:, 0].astype(np.float32), xy[:, 1].astype(np.float32), np.full(n, 1e4, np.float32)
        )
        hit = self.scene.mi_scene.ray_intersect(mi.Ray3f(origin, mi.Vector3f(0, 0, -1)))
        ground = ~np.asarray(hit.is_valid()) | (np.asarray(hit.p.z) < self.config.ue_height)
        return ground

    def _solve(self, xy: np.ndarray, max_depth: int, reflections: bool):
        rt, c = self._rt, self.config
        names = [f"rx{i}" for i in range(len(xy))]
        for name, (x, y) in zip(names, xy, strict=True):
            self.scene.add(rt.Receiver(name, position=[float(x), float(y), float(c.ue_height)]))
        try:
            return self.solver(
                self.scene,
                max_depth=max_depth,
                max_num_paths_per_src=c.max_num_paths_per_src,
                samples_per_src=c.samples_per_src,
                synthetic_array=True,
                los=True,
                specular_reflection=reflections,
                diffuse_reflection=False,
                refraction=False,
                diffraction=False,
                edge_diffraction=False,
                seed=c.seed,
            )
        finally:
            for name in names:
                self.scene.remove(name)

    def point_to(self, sector_azimuth_deg: float) -> None:
        self.tx.orientation = [
            float(np.radians(sector_azimuth_deg)),
            float(np.radians(self.config.downtilt_deg)),
            0.0,
        ]

    def trace(self, xy: np.ndarray, sector: int, spot_check: bool = False) -> dict[str, np.ndarray]:
        """csi complex64 (n, ue_ant, bs_ant, subcarriers), los bool (n,), num_paths int32 (n,)."""
        result = self._trace(xy, sector)
        small = self.config.spot_check_batch
        if not spot_check or len(xy) <= small:
            return result
        self.spot_checks += 1
        parts = [self._trace(xy[i : i + small], sector) for i in range(0, len(xy), small)]
        again = {k: np.concatenate([p[k] for p in parts]) for k in result}
        if (again["num_paths"] != result["num_paths"]).any():
            self.spot_check_mismatches += 1
            LOG.warning(
                "spot check: %d of %d paths of a %d-receiver batch were dropped by Sionna's "
                "deduplication table; using the sub-batch result (raise max_num_paths_per_src or "
                "lower batch_size)",
                int(again["num_paths"].sum() - result["num_paths"].sum()),
                int(again["num_paths"].sum()),
                len(xy),
            )
            return again
        return result

    def _trace(self, xy: np.ndarray, sector: int) -> dict[str, np.ndarray]:
        self.point_to(self.config.sector_azimuths_deg[sector])
        paths = self._solve(xy, self.config.max_depth, reflections=True)
        valid = np.asarray(paths.valid.numpy())[:, 0, :]  # (rx, paths), one source
        share = self.candidates.count / self.config.max_num_paths_per_src
        self.max_path_share = max(self.max_path_share, share)
        if share >= self.config.cap_fraction:
            if len(xy) == 1:
                raise RuntimeError(
                    f"one receiver at {xy[0]} needs {self.candidates.count} candidate paths, over "
                    f"{self.config.cap_fraction:.0%} of max_num_paths_per_src="
                    f"{self.config.max_num_paths_per_src}; raise the cap"
                )
            self.splits += 1
            LOG.warning(
                "batch of %d receivers stored %d candidate paths (%.0f%% of the cap); splitting it",
                len(xy), self.candidates.count, 100 * share,
            )  # fmt: skip
            half = len(xy) // 2
            a, b = self._trace(xy[:half], sector), self._trace(xy[half:], sector)
            return {k: np.concatenate([a[k], b[k]]) for k in a}
        cfr = paths.cfr(
            frequencies=self.frequencies,
            normalize_delays=self.config.normalize_delays,
            out_type="numpy",
        )
        csi = np.asarray(cfr)[:, :, 0, :, 0, :].astype(np.complex64)
        interactions = np.asarray(paths.interactions.numpy())  # (depth, rx, tx, paths)
        direct = (
            (interactions == 0).all(axis=0)[:, 0, :] if interactions.size else np.ones_like(valid)
        )
        return {
            "csi": csi,
            "los": (valid & direct).any(axis=1),
            "num_paths": valid.sum(axis=1).astype(np.int32),
        }

    def los_only(self, xy: np.ndarray, sector: int) -> np.ndarray:
        """LoS flag from a solve with reflections off (used to check `trace`'s flags)."""
        self.point_to(self.config.sector_azimuths_deg[sector])
        paths = self._solve(xy, 0, reflections=False)
        return np.asarray(paths.valid.numpy())[:, 0, :].any(axis=1)
