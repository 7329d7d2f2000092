def add(a, b):
    """Add two numbers."""
    return a + b
