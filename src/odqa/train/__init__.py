"""Training retrievers on your own data: data formats, negative mining, losses, trainer."""
