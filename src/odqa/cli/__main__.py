"""``python -m odqa.cli``: the ``odqa`` command."""

from odqa.cli import main

main()
