"""The command line's command groups; ``core.cli`` builds the parser from their ``register`` functions."""
