"""The PDF parser: a sandboxed child process (`extract.py`) and the pure steps around it."""
