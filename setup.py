"""Packaging for jukebox-nb: every field comes from `settings.ini` (nbdev 2)."""
from configparser import ConfigParser
from pathlib import Path

import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read(Path(__file__).parent / "settings.ini")
cfg = cfg["DEFAULT"]

licenses = {"apache2": "Apache-2.0"}  # SPDX expression (license classifiers are deprecated)
readme = Path(__file__).parent / "README.md"

setuptools.setup(
    name=cfg["repo"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=readme.read_text() if readme.exists() else "",
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license=licenses[cfg["license"]],
    url=cfg["git_url"],
    keywords=cfg["keywords"].split(),
    classifiers=["Programming Language :: Python :: 3"],
    python_requires=">=" + cfg["min_python"],
    # Namespace discovery: the data folders under assets/ (models/vqvae, ...) have no __init__.py but are
    # importable names, so plain find_packages leaves them "ambiguous" and setuptools prints a warning per
    # folder. Listed as (namespace) packages, their files ship through MANIFEST.in + include_package_data.
    packages=setuptools.find_namespace_packages(
        include=[cfg["lib_name"], cfg["lib_name"] + ".*"], exclude=["*.__pycache__", "*.__pycache__.*"]),
    include_package_data=True,
    install_requires=cfg["requirements"].split(),
    extras_require={"dev": cfg["dev_requirements"].split()},
    entry_points={
        "console_scripts": cfg["console_scripts"].split(),
        "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    zip_safe=False,
)
