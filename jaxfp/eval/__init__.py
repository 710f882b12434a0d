"""Metrics, plots and results tables."""

from jaxfp.eval.metrics import (
    PERCENTILES,
    bootstrap_ci,
    error_summary,
    hit_rate,
    position_errors,
    positioning_report,
    region_success_rate,
    rss_nrmse,
    rss_rmse,
)
from jaxfp.eval.plots import cdf_plot, percentile_bar_plot, radio_map_plot
from jaxfp.eval.report import atomic_path, format_table, write_json

__all__ = [
    "PERCENTILES",
    "atomic_path",
    "bootstrap_ci",
    "cdf_plot",
    "error_summary",
    "format_table",
    "percentile_bar_plot",
    "hit_rate",
    "position_errors",
    "positioning_report",
    "radio_map_plot",
    "region_success_rate",
    "rss_nrmse",
    "rss_rmse",
    "write_json",
]
