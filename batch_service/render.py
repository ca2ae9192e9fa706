"""An executed notebook as HTML, with nbconvert (the same rendering Jupyter users know)."""

from __future__ import annotations

import nbformat
from nbconvert import HTMLExporter


def notebook_html(content: bytes) -> str:
    """Render a stored notebook; JupyterLab's template, no extra resources."""
    nb = nbformat.reads(content.decode("utf-8"), as_version=4)
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb)
    return body
