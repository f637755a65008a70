"""Try-on: render, analyze, the WebSocket stream, products and catalog, vision workers."""
