"""Pure machine learning: training, algorithms, scoring rules, model files and the one-record fast path.

Nothing here imports a service, the database or streamlit (services call down into `ml`, never the
reverse). The package re-exports nothing: import the module you need (`from mlops_core.ml import training`),
so the model-check child process imports only what it uses.
"""
