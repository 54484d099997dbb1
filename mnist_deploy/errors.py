class DeployError(RuntimeError):
    """A problem the user can act on; tasks turn it into a non-zero exit with this message."""
