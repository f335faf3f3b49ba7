"""data_catalog package."""
