"""Metering (layer 2): one usage row per request, with its cost from the catalog's prices."""
