"""Scoring a catalog: every matching scenario, one log in memory at a time."""

from __future__ import annotations

import dataclasses
import sys

from tqdm import tqdm

from andon.scenarios.catalog import Catalog
from andon.scenarios.qa.config import QAConfig
from andon.scenarios.qa.scoring import score_log
from andon.scenarios.query import parse_query


def score_catalog(catalog: Catalog, query: str = "", progress: bool = True, config: QAConfig | None = None) -> int:
    """Score every scenario matching `query` and record the scores (curator overrides are kept).

    Works log by log: a log's matching windows are listed, the log is loaded (its sweeps stream from
    the blob store), its checks run once, and its scores are written in one transaction before the
    next log is touched, so memory stays that of one log and an interruption loses at most one log.

    Args:
        catalog: the catalog to score and write to.
        query: the curator's search language (andon.scenarios.query); "" scores every active scenario.
        progress: show a progress bar on stderr.
        config: check thresholds.

    Returns:
        The number of scenarios scored.

    Raises:
        BadInput: the query is not understood.
    """
    parsed = parse_query(query)
    log_ids = [log_id for log_id in catalog.logs()
               if not parsed.logs or any(log_id.startswith(prefix) for prefix in parsed.logs)]
    scored = 0
    for log_id in tqdm(log_ids, desc="label QA", unit="log", file=sys.stderr, disable=not progress):
        # The query's own log terms chose log_ids; narrowing to this log keeps its other terms.
        windows = [(s.scenario_id, s.t_start_ns, s.t_end_ns)
                   for s in catalog.iter_search(dataclasses.replace(parsed, logs=(log_id,)))
                   if s.log_id == log_id]
        if not windows:
            continue
        catalog.set_qa(score_log(catalog.log(log_id), windows, config))
        scored += len(windows)
    return scored
