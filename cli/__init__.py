"""The `cxrsal` command line (installed as the cxrsal.cli package)."""
