"""`python -m scf` is the `scf` command line."""

from scf.fleet.cli import main

main()
