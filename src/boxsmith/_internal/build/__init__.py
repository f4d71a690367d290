"""BUILD stage: base images and their stand-ins, the parity layer, local builds and their record."""
