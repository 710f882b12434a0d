"""PNG figures: error CDFs and radio-map heatmaps (matplotlib, no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxfp.common.atomic_files import atomic_path  # noqa: E402


def cdf_plot(errors: Mapping[str, np.ndarray], path: str | os.PathLike, title: str = "") -> str:
    """Empirical CDF of positioning error for each named method."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, err in errors.items():
        err = np.sort(np.asarray(err, np.float64))
        ax.step(err, np.arange(1, len(err) + 1) / len(err), where="post", label=name)
    ax.set_xlabel("positioning error (m)")
    ax.set_ylabel("CDF")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def radio_map_plot(
    xy: np.ndarray,
    rss_dbm: np.ndarray,
    path: str | os.PathLike,
    title: str = "",
) -> str:
    """One AP's RSS (dBm, NaN = not detected, drawn grey) over sample positions."""
    xy, rss_dbm = np.asarray(xy), np.asarray(rss_dbm, np.float64)
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    missing = np.isnan(rss_dbm)
    ax.scatter(xy[missing, 0], xy[missing, 1], c="lightgrey", s=8, label="not detected")
    points = ax.scatter(xy[~missing, 0], xy[~missing, 1], c=rss_dbm[~missing], s=12, cmap="viridis")
    fig.colorbar(points, ax=ax, label="RSS (dBm)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_aspect("equal", adjustable="datalim")
    if missing.any():
        ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | os.PathLike) -> str:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return os.fspath(path)


def percentile_bar_plot(
    errors: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    percentiles: tuple[int, ...] = (50, 67, 80, 90),
    title: str = "",
) -> str:
    """Grouped bars of error percentiles per method (3GPP TR 38.843's {50, 67, 80, 90}%; Fig. 4b)."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    width = 0.8 / max(len(errors), 1)
    positions = np.arange(len(percentiles))
    for i, (name, err) in enumerate(errors.items()):
        values = np.percentile(np.asarray(err, np.float64), percentiles)
        ax.bar(positions + i * width, values, width, label=name)
    ax.set_xticks(positions + width * (len(errors) - 1) / 2, [f"{q}%" for q in percentiles])
    ax.set_ylabel("positioning error (m)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def per_point_error_plot(
    curves: Mapping[str, np.ndarray], path: str | os.PathLike, title: str = ""
) -> str:
    """Mean error (m) at each reference point, one line per named case (FPN's Figs. 5-6)."""
    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=120)
    for name, values in curves.items():
        values = np.asarray(values, np.float64)
        ax.plot(np.arange(len(values)), values, marker=".", lw=0.8, label=name)
    ax.set_xlabel("reference point")
    ax.set_ylabel("mean error (m)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)
