"""Creative Writing Coach: professional-editor critiques for fiction writers."""

__version__ = "0.1.0"
