"""Training families: each a module with its state, train-step phases, sampler and default metrics
(`base.py` is the contract). Looked up by name in `gan_jax.registry.FAMILIES`."""
