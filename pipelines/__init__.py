"""Ready pipelines: each module has a small ``build(config)`` function."""
