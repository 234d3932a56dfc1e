"""Shared fixtures: small synthetic images.h5 files in the pipeline layout."""
from __future__ import annotations

from pathlib import Path

import pytest

from analysis.toy import write_toy_files


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """{sample}/images.h5 + generated/{sample}/{decoupled_fc,independent_pixels}.h5, 1500 images each."""
    root = tmp_path_factory.mktemp("toy")
    write_toy_files(root, n_images=1500, seed=7)
    return root
