"""m7guard: compliance hardening and audit for Data Fabric clusters on EC2 M7i."""

from importlib.metadata import version

__version__ = version("m7guard")  # set once, in field_encryption/__init__.py
