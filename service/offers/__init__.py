"""Personalized offers: ranking, rules (coupon, suppression, caps), feedback, erasure hook."""

from service.offers.service import erase_shopper_offers
from service.shoppers.erasure import register_eraser

# DELETE /v1/shoppers/{id} must take the derived offer rows with the events.
register_eraser(erase_shopper_offers, name="offers")
