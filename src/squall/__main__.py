"""``python -m squall``: the same as the ``squall`` command."""

from squall.cli.main import main

main()
