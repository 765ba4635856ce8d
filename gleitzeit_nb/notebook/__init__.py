"""The notebook layer: async bridge, rendering, magics and widgets (IPython lives here only)."""
