"""The command-line error format of every entry point: one line ``error: <flag or file>: <problem>``."""
import argparse


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes end with one ``error: ...`` line (no usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")
