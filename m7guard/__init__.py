"""m7guard: compliance hardening and audit for Data Fabric clusters on EC2 M7i."""

__version__ = "0.1.0"
