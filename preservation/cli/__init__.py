"""The `preserve` command line: one thin module per command group."""
