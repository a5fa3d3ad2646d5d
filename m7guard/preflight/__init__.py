"""Pre-deployment verification: what can be known about a deployment without touching a host."""
