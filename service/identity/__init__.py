"""Shopper identity: aliases, identity groups, linking, resolving and erasing shopper ids."""
