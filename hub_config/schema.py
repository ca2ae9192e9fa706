"""The one values schema, written out as JSON for the Helm chart (`make schema`).

hub_config/values.schema.yaml is the source; helm/batchhub/values.schema.json is generated
from it so `helm install` refuses the same typos the hub refuses. A test proves they agree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "hub_config" / "values.schema.yaml"
CHART_SCHEMA = ROOT / "helm" / "batchhub" / "values.schema.json"


def chart_schema() -> dict[str, Any]:
    """The schema the chart ships (the same document, as JSON)."""
    return yaml.safe_load(SOURCE.read_text())


def render() -> str:
    """values.schema.json's exact text."""
    return json.dumps(chart_schema(), indent=2, sort_keys=False) + "\n"


def main() -> int:
    """Write the chart's schema; with --check, fail if it is out of date."""
    text = render()
    if "--check" in sys.argv:
        if not CHART_SCHEMA.exists() or CHART_SCHEMA.read_text() != text:
            print(f"{CHART_SCHEMA} is out of date: run make schema", file=sys.stderr)
            return 1
        return 0
    CHART_SCHEMA.parent.mkdir(parents=True, exist_ok=True)
    CHART_SCHEMA.write_text(text)
    print(CHART_SCHEMA)
    return 0


if __name__ == "__main__":
    sys.exit(main())
