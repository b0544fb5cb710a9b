"""Training: the pipeline that fits a policy and writes a run directory, the minibatch loop, run
directories on disk, sim-to-real fine-tuning and residual RL."""
