"""The composition root: the `scf` command line and the runner that assembles the fleet roles."""
