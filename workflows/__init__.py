"""Apps, workflows, published versions, triggers; the management API and editor pages."""
