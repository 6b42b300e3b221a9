"""Heads on a backbone's feature map; each returns the positive-class logit tensor [B, 1]."""

from ...registry import Registry

HEADS = Registry("head")

from . import classification, wildcat  # noqa: E402,F401  (register)
