"""One module per `impasto` sub-command; each has ``add_parser(subparsers)``."""
