"""Everything that talks to Postgres: connections, migrations and one module per table.

All SQL lives in this package. psycopg errors are translated here into Weir's
own errors, by constraint name, so callers never see a driver exception.
"""
