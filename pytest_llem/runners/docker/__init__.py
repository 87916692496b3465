"""Running items inside containers through the docker SDK (ephemeral or persistent)."""
