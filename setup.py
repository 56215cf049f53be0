"""
Packaging for shadowtwist.

The twistd dropin lives in C{twisted/plugins/} without any C{__init__.py}, so the package list is
written out by hand: setuptools discovery cannot see C{twisted.plugins} (and must not ship an
C{__init__.py} there, which would overwrite Twisted's own on install).
"""

import re

from setuptools import setup

with open("shadowtwist/__init__.py") as f:
    version = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)

with open("README.rst") as f:
    long_description = f.read()

setup(
    name="shadowtwist",
    version=version,
    description="KrakenD-compatible API gateway on Twisted with safe traffic shadowing",
    long_description=long_description,
    long_description_content_type="text/x-rst",
    license="MIT",
    packages=["shadowtwist", "twisted.plugins"],
    package_data={"twisted.plugins": ["shadowgw_plugin.py"]},
    python_requires=">=3.9",
    install_requires=[
        # Twisted 25.5 is the newest release for Python 3.9 (Debian's pypy3).
        "twisted[tls] >= 24.7",
        "treq >= 24.9",
        "zope.interface >= 6.0",
        "service-identity >= 23.1",
        "pyopenssl >= 24.0",
        # cryptography 43.0.3 is the newest with a PyPy 3.9 wheel; newer ones need a Rust build.
        # The two caps below spare pip a long backtrack to the releases that still accept it.
        "cryptography >= 42, < 44; platform_python_implementation == 'PyPy'",
        "pyopenssl < 25.2; platform_python_implementation == 'PyPy'",
        "service-identity < 26.1; platform_python_implementation == 'PyPy'",
        "pyyaml >= 6.0",
        "prometheus-client >= 0.20",
    ],
    entry_points={"console_scripts": ["shadowgw = shadowtwist.cli:main"]},
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: Implementation :: CPython",
        "Programming Language :: Python :: Implementation :: PyPy",
    ],
)
