"""The project's own web app: the demo page and the widget's files (later, the staff console)."""
