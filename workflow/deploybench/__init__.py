"""deploybench."""
