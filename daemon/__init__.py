"""The trading daemon: the process (``python -m daemon``) and its loop, the one place that composes
the kernel, risk and paper or live execution (docs/architecture.md, "Layers")."""
