"""The browser pages: shopper demo, kiosk mode and the product-team dashboard."""
