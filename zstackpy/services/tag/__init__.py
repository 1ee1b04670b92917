"""Tags: system tags (validated against patterns per resource type) and free user tags."""
