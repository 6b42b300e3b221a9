"""`cxrsal settings`: every config key with its default and the values it accepts."""

import click


def register(cli):

    @cli.command()
    @click.argument("sections", nargs=-1)
    def settings(sections):
        """List the config keys (of SECTIONS, default all): default and accepted values. The YAML
        files of --config, --set and the options that set a key all accept exactly these."""
        from cxrsal.config import schema

        entries = schema()
        known = sorted({k.split(".")[0] for k in entries})
        unknown = [s for s in sections if s not in known]
        if unknown:
            raise click.BadParameter(f"{unknown[0]!r}: valid sections: {', '.join(known)}", param_hint="SECTIONS")
        width = max(len(k) for k in entries)
        for key, (_, default, domain) in entries.items():
            if not sections or key.split(".")[0] in sections:
                click.echo(f"{key:<{width}}  {_yaml(default):<16}  {domain.describe()}")


def _yaml(value):
    """A default as one would write it in a YAML config."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if value == "":
        return "''"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
