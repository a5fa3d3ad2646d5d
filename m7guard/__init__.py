"""m7guard: compliance hardening and audit for Data Fabric clusters on EC2 M7i."""

from importlib.metadata import version

__version__ = version("m7guard")  # stated once, in galaxy.yml (packaging/galaxy_version.py)
