"""HTTP adapters: thin handlers that parse input, call the service and render."""
