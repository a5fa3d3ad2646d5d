"""The rule catalog: policies/rules, frameworks, profiles and waivers, loaded and validated."""

from m7guard.catalog.errors import CatalogError, Problem
from m7guard.catalog.loader import find_policies_dir, load_catalog
from m7guard.catalog.model import SEVERITIES, Catalog, Framework, Profile, Rule, severity_rank

__all__ = [
    "SEVERITIES",
    "Catalog",
    "CatalogError",
    "Framework",
    "Problem",
    "Profile",
    "Rule",
    "find_policies_dir",
    "load_catalog",
    "severity_rank",
]
