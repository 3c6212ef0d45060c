"""The REST scoring service (FastAPI + uvicorn): `python -m mlops_core serve`. See `app.py`.

Kept import-free so `python -m mlops_core --help` stays fast.
"""
