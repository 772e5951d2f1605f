"""The CLI: argparse and printing; the work itself is in commands.services."""
