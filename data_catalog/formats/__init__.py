"""Readers and writers for dataset layouts outside the catalog (the public FERV39k release, ...)."""
