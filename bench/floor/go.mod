module batchhub/bench/floor

go 1.22
