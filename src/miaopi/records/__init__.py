"""Record: the database, its migrations and the repositories of cases and clients."""
