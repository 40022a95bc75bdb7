"""An example bench backend plugin (see README.md beside pyproject.toml)."""

__version__ = "0.1.0"
