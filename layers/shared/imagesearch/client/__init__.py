"""A client of a running imagesearch API, for the command-line tools (`imagesearch ingest`, `demo seed`)."""
