"""Tuned recipes, one TOML per (model, dataset); installed as ganzoo.zoo_configs."""
