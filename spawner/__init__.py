"""batchhub's spawners: LocalBatchSpawner (one machine) and BatchKubeSpawner (Kubernetes)."""
