"""The "started from CI" line of the run page header: provider, commit, pipeline (a link when its URL is http(s))
and repository, from the ci.* tags the pipeline CLI records (mlops_core/cli/pipeline.py, ci_tags)."""

from __future__ import annotations

from typing import Mapping

from mlops_core.textsafety import code_span, is_allowed_link
from mlops_core.textsafety import plain_markdown as md_text


def ci_origin_markdown(source: str, tags: Mapping[str, str]) -> str:
    """Markdown for a run's CI origin ("" for a run that did not come from a pipeline)."""
    commit, pipeline = str(tags.get("ci.commit") or ""), str(tags.get("ci.pipeline") or "")
    if source != "ci" and not (commit or pipeline):
        return ""
    provider = str(tags.get("ci.provider") or "").strip()
    parts = [f"Started from CI{f' ({md_text(provider, line_start=False)})' if provider else ''}"]
    if commit:
        parts.append(f"commit {code_span(commit[:12])}")
    if pipeline:
        url = str(tags.get("ci.pipeline_url") or "").strip()
        label = f"pipeline {md_text(pipeline, line_start=False)}"
        parts.append(f"[{label}](<{url}>)" if is_allowed_link(url) and not set(url) & set("<> \n") else label)
    if tags.get("ci.repository"):
        parts.append(f"repository {code_span(tags['ci.repository'])}")
    return " · ".join(parts)
