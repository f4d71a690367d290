"""PUBLISH stage: targets (the local backend or E2B cloud) and the publisher."""
