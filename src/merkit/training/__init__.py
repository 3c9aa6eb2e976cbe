"""Training: the shared loop, training-only augmentation."""
