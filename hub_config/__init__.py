"""The one hub configuration and its values file."""
