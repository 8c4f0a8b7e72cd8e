"""AlphaTwin."""
