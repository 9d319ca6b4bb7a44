"""Iterative inpainting: region shapes and placement, and the GLIDE-style iterative algorithm."""
