"""What the routes call: loaded models behind a request batcher, cached run data, uploads
expanded within their bounds, image thumbnails."""
