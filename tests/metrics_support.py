"""Reading Prometheus text the way a scraper does, with prometheus-client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def scrape(text: bytes | str) -> dict[str, float]:
    """Every sample, keyed by its name and its labels as ``name{k="v",...}`` (labels in
    name order), or by its bare name when it has none."""
    if isinstance(text, bytes):
        text = text.decode()
    figures: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            figures[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return figures
