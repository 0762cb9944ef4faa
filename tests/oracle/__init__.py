"""labelme as a test oracle: it runs in its own virtual environment, in a subprocess, never in our process."""
