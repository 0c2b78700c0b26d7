"""Maintenance tools for the course: notebook execution, notebook hygiene and the book build.

The modules are scripts (``python tools/run_notebooks.py --help``) and also importable from the
tests (``from tools.notebook_hygiene import check_notebook``); pytest puts the repository root on
``sys.path`` through the ``pythonpath`` option in ``pyproject.toml``.
"""
