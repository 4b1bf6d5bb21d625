"""Helpers the rest of the kit stands on: atomic writes and locks (``io``), the device
and its cores (``device``), and what a result depends on (``provenance``)."""
