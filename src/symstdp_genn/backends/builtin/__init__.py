"""The builtin backend: a small C code generator for the project's model definitions."""

from .backend import BuiltinBackend

__all__ = ["BuiltinBackend"]
