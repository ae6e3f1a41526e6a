"""Example services built on paymentorch: FastAPI and Flask, sharing one dashboard."""
