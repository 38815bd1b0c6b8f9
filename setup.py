"""Packaging beside pyproject.toml (which holds the metadata): the YAML configs live at the top level, `configs/`,
and ship inside the wheel as the package `gan_jax.configs`, so `pip install .` or the wheel runs the CLIs from any
directory (gan_jax/cli/common.py finds them in a checkout and in an install). pyproject.toml's [tool.setuptools]
cannot map a folder outside the package into it while also discovering the packages, hence this file."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["gan_jax", "gan_jax.*"]), "gan_jax.configs"],
    package_dir={"gan_jax.configs": "configs"},
    package_data={"gan_jax.configs": ["*.yaml", "**/*.yaml"]},
)
