"""`python -m cxrsal.cli`: the same as the `cxrsal` console script."""

from .main import main

main()
