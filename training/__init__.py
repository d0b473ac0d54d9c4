"""Training module (installed as ``vidsr.training``): frame datasets, losses and the trainer."""
