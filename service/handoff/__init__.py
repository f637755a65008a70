"""Omnichannel hand-off: a kiosk mints a QR token, a phone claims it, histories are linked."""
