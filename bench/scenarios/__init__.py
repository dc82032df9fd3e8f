"""One module per benchmark scenario; each exposes ``async run(emulator, quick) -> dict``."""
