"""Training: datasets, (image, target) transforms, resampling, engines and checkpoints."""
