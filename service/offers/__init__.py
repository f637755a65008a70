"""Personalized offers: ranking, rules (coupon, suppression, caps), feedback."""
