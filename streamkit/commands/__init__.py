"""One module per ``streamkit`` subcommand (see :mod:`streamkit.cli`)."""
