"""``python -m flows.cli``: the same as the ``ferv`` entry point."""

from flows.cli.app import main

main()
