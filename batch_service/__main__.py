"""`python -m batch_service --config=<json>`: run the batch service."""

import signal
import sys

# The hub stops its services with SIGINT: one that arrives while the service is still
# importing and opening its store ends it quietly (the running service handles its own).
for _sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_sig, lambda signum, frame: sys.exit(128 + signum))

from batch_service.app import main  # noqa: E402

main()
