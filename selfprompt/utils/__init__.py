"""Helpers the rest of the kit stands on: atomic writes and locks (``io``), the device
and its cores (``device``), what a result depends on (``provenance``), the kit's default
folders (``paths``) and names imported on first use (``lazy``)."""
