"""Training loops (plain functions over config dataclasses), losses, data and run-dir helpers."""
