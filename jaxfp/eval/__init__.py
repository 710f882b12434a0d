"""Metrics (with ISO/IEC 18305 and IPIN conventions), summaries over seeds, results files and
tables, plots."""

from jaxfp.eval.iso18305 import (
    StandardConstants,
    errors_3d,
    majority_label,
    penalised_errors,
    standard_report,
    standard_table,
)
from jaxfp.eval.metrics import (
    PERCENTILES,
    bootstrap_ci,
    error_summary,
    hit_rate,
    position_errors,
    positioning_report,
    region_success_rate,
    rss_mae,
    rss_nrmse,
    rss_rmse,
)
from jaxfp.eval.plots import cdf_plot, percentile_bar_plot, radio_map_plot
from jaxfp.eval.results import (
    error_row_over_seeds,
    format_table,
    markdown_table,
    read_results,
    render,
    write_results,
)
from jaxfp.eval.stats import over_seeds, paired_difference, t_interval, verdict

__all__ = [
    "PERCENTILES",
    "StandardConstants",
    "bootstrap_ci",
    "cdf_plot",
    "error_row_over_seeds",
    "error_summary",
    "errors_3d",
    "format_table",
    "hit_rate",
    "majority_label",
    "markdown_table",
    "over_seeds",
    "paired_difference",
    "penalised_errors",
    "percentile_bar_plot",
    "position_errors",
    "positioning_report",
    "radio_map_plot",
    "read_results",
    "region_success_rate",
    "render",
    "rss_mae",
    "rss_nrmse",
    "rss_rmse",
    "standard_report",
    "standard_table",
    "t_interval",
    "verdict",
    "write_results",
]
