"""`python -m batch_service --config=<json>`: run the batch service."""

from batch_service.app import main

main()
