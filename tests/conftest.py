"""Shared fixtures: small synthetic data sets in the Kaggle layouts (made once per session)."""

import shutil

import pytest

from cxrsal.data.synth import synth


@pytest.fixture(scope="session")
def rsna_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("rsna")
    synth("rsna", root, 40, seed=1, image_size=128)
    return root


@pytest.fixture(scope="session")
def siim_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("siim")
    synth("siim", root, 30, seed=2, image_size=128)
    return root


@pytest.fixture
def rsna_copy(rsna_root, tmp_path):
    """A private copy of the RSNA data that a test may damage."""
    dst = tmp_path / "rsna_copy"
    shutil.copytree(rsna_root, dst)
    return dst
