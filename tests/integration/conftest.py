"""Integration tier: real processes (the CLI as a subprocess), real files of real size and a real
database, but no browser. Slower than tests/unit, which has no subprocess, no database and no demo seed."""
