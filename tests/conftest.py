from backends import backend

__all__ = ["backend"]
