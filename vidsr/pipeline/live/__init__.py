"""Live streaming: capture -> upscale -> window / HTTP / recording, at the camera's rate."""
