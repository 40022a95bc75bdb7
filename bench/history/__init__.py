"""`bench history`: runs kept in one embedded SQLite database, charted across runs.

store (the database: layout, add, queries; sqlite3 and records only) -> series (one
model and backend across runs, with the steps `bench.comparison` resolves between consecutive
runs) -> export (CSV or Parquet) -> cmd (the `bench history` subcommands).
"""
