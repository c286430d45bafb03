"""Model bundle tests: export (torch, open_clip) and the torch-free runtime."""
