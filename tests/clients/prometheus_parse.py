"""Parses Prometheus text exposition from stdin with prometheus_client's own parser and prints
the families as JSON: [{"name", "type", "samples": [{"name", "labels", "value"}]}].
Non-finite values are printed as strings ("NaN", "+Inf"). A parse error exits non-zero."""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def value(v):
    return v if math.isfinite(v) else str(v)


families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append(
        {
            "name": family.name,
            "type": family.type,
            "samples": [
                {"name": s.name, "labels": s.labels, "value": value(s.value)}
                for s in family.samples
            ],
        }
    )
json.dump(families, sys.stdout)
