"""Helpers the rest of the kit stands on: atomic writes and locks (``io``), the device
and its cores (``device``), what a result depends on (``provenance``), the kit's default
folders, in a checkout or installed (``paths``), the lock file's pins for a platform
(``lock``) and names imported on first use (``lazy``)."""
