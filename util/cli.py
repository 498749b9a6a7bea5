"""The command-line error format of every entry point: one line ``error: <flag or file>: <problem>``."""
import argparse
import ast


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes end with one ``error: ...`` line (no usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def parse_value(text):
    """An option value typed as written: true/false/none (any case) -> bool/None, Python literals
    (ints, floats, tuples such as ``(480,864)``) -> their value, anything else -> the string."""
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_key_values(items, source):
    """``["k=v", ...]`` -> {k: parse_value(v)}; ``source`` names the flag or spec in the error."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{source} expects KEY=VALUE, got {item!r}")
        options[key.strip()] = parse_value(value)
    return options


def parse_policy_spec(spec):
    """'every5' or 'every5:max_frames=10,top_k=20' -> (policy name, {option: value})."""
    name, _, rest = spec.partition(":")
    if not name:
        raise ValueError(f"empty policy name in {spec!r}")
    return name, parse_key_values(filter(None, rest.split(",")), f"policy spec {spec!r}")
