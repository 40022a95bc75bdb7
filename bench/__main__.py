"""`python -m bench`."""

from bench._shadow import leave_shadowing_folder

leave_shadowing_folder()

from bench.cli import main  # noqa: E402 - after the path repair above

if __name__ == "__main__":
    raise SystemExit(main())
