"""Imported only by the worker's fork server: preload the handler modules so each job forks ready."""

from .runner import _preload

_preload()
