"""The ``visionforge`` command line."""
