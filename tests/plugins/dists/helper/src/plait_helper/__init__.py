"""Nothing: a dependency to be installed and removed again."""
