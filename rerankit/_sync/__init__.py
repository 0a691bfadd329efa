"""The generated sync facade and its private event loop."""
