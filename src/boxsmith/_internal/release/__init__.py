"""RELEASE: every stage in order for the templates that changed, and its report."""
