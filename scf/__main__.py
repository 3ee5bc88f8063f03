"""`python -m scf` is the `scf` command line."""

from scf.app.cli import main

main()
