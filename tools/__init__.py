"""Small developer tools that read the code (not part of the NF)."""
