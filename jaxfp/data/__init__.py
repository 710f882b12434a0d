"""Fingerprint data sets: the validated type, loaders, representations, splits, synthetic worlds."""

from jaxfp.data.comford import load_comford
from jaxfp.data.comford_write import write_comford
from jaxfp.data.longterm import load_longterm, load_longterm_month
from jaxfp.data.mat import load_mat
from jaxfp.data.registry import LOADERS, detect_format, load, load_parts
from jaxfp.data.representations import fit_min_rss, represent
from jaxfp.data.rss_csv import load_rss_csv
from jaxfp.data.splits import labelled_split, split_by_rp
from jaxfp.data.tabular import load_sodindoorloc, load_ujiindoorloc
from jaxfp.data.types import DataFormatError, FingerprintSet, concat

__all__ = [
    "LOADERS",
    "DataFormatError",
    "FingerprintSet",
    "concat",
    "detect_format",
    "fit_min_rss",
    "labelled_split",
    "load",
    "load_comford",
    "load_longterm",
    "load_longterm_month",
    "load_mat",
    "load_parts",
    "load_rss_csv",
    "load_sodindoorloc",
    "load_ujiindoorloc",
    "represent",
    "split_by_rp",
    "write_comford",
]
