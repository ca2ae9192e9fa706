"""Python files as jobs: the notebook Jupytext reads from them, and parameters they set again.

A .py job is read by Jupytext (percent `# %%` or light `# +` format), so a cell marked
`# %% tags=["parameters"]` is a parameters cell as in a notebook and papermill injects the
passed parameters after it. A script without one gets them at the top, where its own top-level
assignment of the same name would silently win: that is what `reassignments` finds and says.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

import nbformat

PARAMETERS_HINT = 'mark a parameters cell with `# %% tags=["parameters"]`'


def script_notebook(source: str, kernel_name: str = "python3") -> nbformat.NotebookNode:
    """The notebook Jupytext reads from a Python file, for a kernel."""
    import jupytext  # only .py jobs need it: keep it out of every batch server's start

    return for_kernel(jupytext.reads(source, fmt="py"), kernel_name)


def empty_notebook(kernel_name: str) -> nbformat.NotebookNode:
    """A notebook with one empty code cell, for a kernel."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(""))
    return for_kernel(nb, kernel_name)


def for_kernel(nb: nbformat.NotebookNode, kernel_name: str) -> nbformat.NotebookNode:
    """The notebook, set to run in a Python kernel of that name."""
    nb.metadata["kernelspec"] = {
        "name": kernel_name,
        "display_name": kernel_name,
        "language": "python",
    }
    # papermill reads the language to write injected parameters in it.
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def _parameters_index(nb: nbformat.NotebookNode) -> int:
    for index, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    return -1


def _assigned_names(tree: ast.Module) -> Iterable[tuple[str, int]]:
    """Names a block of code binds at its top level, with their lines."""
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            targets = [node.target]
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name):
                    yield leaf.id, node.lineno


def _cell_start_lines(source: str, nb: nbformat.NotebookNode) -> list[int]:
    """The file line (1-based) where each cell's first source line sits."""
    lines = source.splitlines()
    starts, at = [], 0
    for cell in nb.cells:
        first = next((ln for ln in cell.source.splitlines() if ln.strip()), None)
        found = at
        if first is not None:
            for number in range(at, len(lines)):
                if lines[number] == first:
                    found = number
                    break
        starts.append(found + 1)
        at = found + max(1, len(cell.source.splitlines()))
    return starts


def reassignments(source: str, file_name: str) -> dict[str, str]:
    """For each name the script assigns at top level after its parameters cell (or anywhere,
    without one), the warning a parameter of that name would get: it is set again there."""
    import jupytext
    from IPython.core.inputtransformer2 import TransformerManager

    nb = jupytext.reads(source, fmt="py")
    after = _parameters_index(nb)
    starts = _cell_start_lines(source, nb)
    found: dict[str, str] = {}
    for index, cell in enumerate(nb.cells):
        if index <= after or cell.cell_type != "code":
            continue
        try:
            # Jupytext uncomments magics (`# !pip ...`): read the cell as the kernel would.
            tree = ast.parse(TransformerManager().transform_cell(cell.source))
        except SyntaxError:
            continue  # the kernel will say what is wrong with it
        for name, line in _assigned_names(tree):
            if name not in found:
                where = starts[index] + line - 1
                hint = PARAMETERS_HINT if after < 0 else "move it into the parameters cell"
                found[name] = f"parameter {name!r} is set again at {file_name} line {where}; {hint}"
    return found
