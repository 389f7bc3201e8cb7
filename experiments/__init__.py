"""npu-dse experiment scripts: one per figure or table, the demo and ``run_all``."""
