"""npu-dse experiments, file formats and the command-line interface."""
