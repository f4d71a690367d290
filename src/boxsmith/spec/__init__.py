"""Spec stage: load YAML with positions, resolve extends/vars/matrix, validate against the models."""
