"""keywords package."""
