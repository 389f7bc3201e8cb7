"""npu-dse design-space search (see the open issues for what lands here)."""
