"""The console pages of the capabilities that exist (one module per menu entry)."""
