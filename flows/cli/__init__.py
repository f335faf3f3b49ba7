"""The ``ferv`` command line: every command-line module of the project lives in this package.

``app`` is the root command (flows/cli/app.py) and ``main`` the ``ferv`` entry point; each command group
is a module named after it (``assets``, ``annotate``, ``benchmark``, ``crawl``, ``release``, ...).
"""

from flows.cli.app import app, main

__all__ = ["app", "main"]
