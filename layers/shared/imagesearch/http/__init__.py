"""HTTP plumbing shared by the upload and search functions and the local server."""
