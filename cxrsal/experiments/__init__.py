"""Experiments over stored maps: scoring (utility, pointwise detection), randomization, repeatability."""
