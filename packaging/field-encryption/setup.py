"""The field-encryption distribution's version: galaxy.yml's, the one place it is stated
(packaging/galaxy_version.py). Everything else is in pyproject.toml beside this file. This file
is run from the scratch tree the m7guard_wheel module assembles, whose root holds galaxy.yml and
packaging/galaxy_version.py as the repository's root does."""

import runpy
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
galaxy_version = runpy.run_path(str(HERE / "packaging" / "galaxy_version.py"))["galaxy_version"]

setup(version=galaxy_version(HERE))
