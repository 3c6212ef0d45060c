"""Compare versions' charts: one column's distribution in two dataset versions (their stored samples).

Read-only like ``datasets.diff_versions`` (the dataset page is open to every role); numeric columns are
binned on shared edges so the two histograms overlay, categorical ones keep the most frequent values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..db import Database
from ..models.dataset_compare import ColumnDistributionPublic
from ..models.datasets import DatasetVersion
from . import datasets

MAX_BINS = 30
MAX_CATEGORIES = 15


def _samples(db: Database, from_version_id: int, to_version_id: int):
    a = datasets.get_version(db, from_version_id)
    b = datasets.get_version(db, to_version_id)
    with db.read() as s:
        ka = s.get(DatasetVersion, a.id).sample_key
        kb = s.get(DatasetVersion, b.id).sample_key
    return a, b, datasets._load_sample(ka), datasets._load_sample(kb)


def column_distribution(
    db: Database, *, from_version_id: int, to_version_id: int, column: str
) -> ColumnDistributionPublic | None:
    """Shares per bin (numeric) or per value (categorical) of ``column`` in both versions' samples.

    None when either version has no stored sample or lacks the column (an added or removed column)."""
    a, b, sa, sb = _samples(db, from_version_id, to_version_id)
    if sa is None or sb is None or column not in sa.columns or column not in sb.columns:
        return None
    left, right = sa[column].dropna(), sb[column].dropna()
    numeric = pd.api.types.is_numeric_dtype(left) and pd.api.types.is_numeric_dtype(right)
    numeric = numeric and not pd.api.types.is_bool_dtype(left) and not pd.api.types.is_bool_dtype(right)
    if numeric:
        lv = left.to_numpy(dtype=np.float64)
        rv = right.to_numpy(dtype=np.float64)
        lv, rv = lv[np.isfinite(lv)], rv[np.isfinite(rv)]
        both = np.concatenate([lv, rv])
        if both.size == 0:
            return None
        bins = min(MAX_BINS, max(5, int(np.sqrt(both.size))))
        edges = np.histogram_bin_edges(both, bins=bins)
        lh = np.histogram(lv, edges)[0] / max(lv.size, 1)
        rh = np.histogram(rv, edges)[0] / max(rv.size, 1)
        centres = (edges[:-1] + edges[1:]) / 2
        return ColumnDistributionPublic(
            column=column,
            kind="num",
            from_ref=a.ref,
            to_ref=b.ref,
            labels=[float(x) for x in centres],
            edges=[float(x) for x in edges],
            from_share=[float(x) for x in lh],
            to_share=[float(x) for x in rh],
            rows=(int(lv.size), int(rv.size)),
        )
    ls, rs = left.astype(str).value_counts(normalize=True), right.astype(str).value_counts(normalize=True)
    top = (ls.add(rs, fill_value=0.0)).sort_values(ascending=False).index[:MAX_CATEGORIES].tolist()
    labels = list(top)
    from_share = [float(ls.get(k, 0.0)) for k in top]
    to_share = [float(rs.get(k, 0.0)) for k in top]
    rest = (1.0 - sum(from_share), 1.0 - sum(to_share))
    if max(rest) > 1e-9:
        labels.append("(other)")
        from_share.append(max(rest[0], 0.0))
        to_share.append(max(rest[1], 0.0))
    return ColumnDistributionPublic(
        column=column,
        kind="cat",
        from_ref=a.ref,
        to_ref=b.ref,
        labels=labels,
        from_share=from_share,
        to_share=to_share,
        rows=(int(left.size), int(right.size)),
    )
