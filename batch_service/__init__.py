"""batchhub's batch service: queue, store, scheduler, pages and API."""
