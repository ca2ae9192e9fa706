"""Start a single-user server as `jupyterhub-singleuser` does, without one slow, unused import.

jsonschema checks the "iri" string format with rfc3987-syntax when that is installed (it comes
with jupyter-events' `jsonschema[format-nongpl]`), and that module compiles an Earley grammar
when imported: about a second of CPU on every server start, before JupyterLab or a batch run can
begin. A server validates only Jupyter's own event schemas, none of which checks IRIs, so the
module is marked absent and jsonschema skips that one format, as it does wherever the package
is not installed. The user's kernels are separate processes and unaffected.

    python -m batch_service.singleuser [jupyterhub-singleuser arguments]
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run jupyterhub-singleuser."""
    # Only if nothing imported it yet: a None entry makes `import rfc3987_syntax` fail cleanly.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    from jupyterhub.singleuser import main as singleuser_main

    sys.exit(singleuser_main())


if __name__ == "__main__":
    main()
