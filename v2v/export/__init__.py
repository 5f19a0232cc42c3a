"""Exporters to torch-free runtimes (ONNX)."""
