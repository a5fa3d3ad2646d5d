"""The m7guard distribution's version, galaxy.yml's (packaging/galaxy_version.py), and the build
step that puts the rule catalog, the roles, their plugins and the playbooks into the
m7guard wheel.

Everything else is declared in pyproject.toml. An installed m7guard finds these directories
inside its package (m7guard/_data/), where m7guard.locate looks when it does not run from a
checkout; an editable install reads the checkout's own, so nothing is copied for it.
"""

import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# the list of shipped directories is m7guard.locate's (a module without dependencies)
SHIPPED = runpy.run_path(str(HERE / "m7guard" / "locate.py"))["SHIPPED"]
galaxy_version = runpy.run_path(str(HERE / "packaging" / "galaxy_version.py"))["galaxy_version"]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        data = Path(self.build_lib) / "m7guard" / "_data"
        for name in SHIPPED:
            target = data / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(HERE / name, target, ignore=IGNORE)


setup(version=galaxy_version(HERE), cmdclass={"build_py": BuildWithData})
