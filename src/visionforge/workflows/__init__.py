"""End-to-end jobs built from the lower layers (train-evaluate-report, demo)."""
