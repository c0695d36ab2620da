"""Packaging for stlit: reads everything from settings.ini (nbdev 2 layout).

`requirements` are compatible ranges (tested lower bounds, no upper caps without a known break); the exact versions
that the book and CI are checked with live in constraints.txt (`pip install -c constraints.txt -e ".[dev,images]"`).

nbdev_export (re)writes a pyproject.toml whose [project] fields are all `dynamic`: every one of them must be set here.
"""
from configparser import ConfigParser
from pathlib import Path

import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read(Path(__file__).parent / "settings.ini")
cfg = cfg["DEFAULT"]


def reqs(key):
    return cfg.get(key, "").split()


setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=(Path(__file__).parent / "README.md").read_text(),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license="Apache-2.0",
    url=cfg["git_url"],
    packages=setuptools.find_packages(include=["stlit", "stlit.*"]),
    python_requires=">=" + cfg["min_python"],
    install_requires=reqs("requirements"),
    # Ranges the code is tested with (lower bounds: tests/test_packaging.py installs them); the exact, checked set
    # that `make` and CI install is constraints.txt. torchvision is imported lazily (stlit.pp / stlit.hggep image
    # encoders), so it lives in the `images` extra, not in the core.
    extras_require={
        "images": reqs("images_requirements"),
        "r": reqs("r_requirements"),
        "fetch": reqs("fetch_requirements"),
        "peers": reqs("peers_requirements"),
        "dev": reqs("dev_requirements"),
    },
    keywords=cfg["keywords"].split(),
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Scientific/Engineering :: Bio-Informatics",
    ],
    project_urls={"Source": cfg["git_url"], "Documentation": cfg["doc_host"] + cfg["doc_baseurl"]},
    scripts=[],
    # Data files inside the package: the SHA-256 table of every registered dataset's files (stlit.data.fetch).
    # package_data puts them in the wheel; MANIFEST.in lists them (and settings.ini, read above) for the sdist.
    package_data={"stlit": ["fetch_checksums.csv"]},
    include_package_data=True,
    zip_safe=False,
    entry_points={"nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
