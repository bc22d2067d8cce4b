"""Source handling without torch: which files to read, and how."""
