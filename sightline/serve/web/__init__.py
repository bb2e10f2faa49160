"""The web UI: HTML pages and their static files, served by the package (no CDN, no build)."""
