"""pyrolab-jupyter."""
