"""Spec stage: load YAML with positions, resolve extends/vars/matrix, validate the models."""
