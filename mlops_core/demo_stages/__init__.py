"""Demo seeders, one module per stage (see mlops_core/demo.py)."""
