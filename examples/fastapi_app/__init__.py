"""The FastAPI example: ``uvicorn examples.fastapi_app.main:app``."""
