"""Makes a plain `pytest --hosts=... m7guard/checks` run the checks with m7guard's fixtures."""

from m7guard.checks.support.plugin import (  # noqa: F401 (pytest finds hooks and fixtures by name)
    _m7guard_applicability,
    evidence,
    host_snapshot,
    m7_rule,
    params,
    pytest_addoption,
    pytest_collect_file,
    pytest_collection_finish,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_runtestloop,
    sysctl,
)
