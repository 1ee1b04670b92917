"""Instance and disk offerings."""
