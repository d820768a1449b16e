"""The Flask sync service and the plansheet command line."""
