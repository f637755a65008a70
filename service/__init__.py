"""FastAPI service: try-on API, touchpoint events, analytics and personalized offers."""
