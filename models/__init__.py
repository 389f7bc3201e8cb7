"""npu-dse models: small flax networks and workload extraction (see the open issues)."""
