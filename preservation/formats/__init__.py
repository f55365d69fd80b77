"""What the bytes are: format identification and validation of payload files (issue 17)."""
