"""Development and test tooling: ``make run``'s launcher and the development Notary.

Not part of the product: ``pyproject.toml`` does not package it and no product code imports
it. It is imported from the repository root (``python -m devtools.run``, pytest's
``pythonpath``, the benchmarks' ``sys.path``).
"""
