"""The REST API, one module per resource: runs, their files, inspection, datasets, jobs."""
