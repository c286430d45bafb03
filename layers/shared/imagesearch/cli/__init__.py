"""The `imagesearch` command line."""
