"""The Flask example: ``flask --app examples.flask_app.main run``."""
