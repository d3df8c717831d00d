"""NASNet-A and PNASNet: searched cells built with slimcli.slim (no model scope)."""
