"""Source handling without torch: which files to read, and how; example calls, construction
sites, factories, argparse defaults and the code blocks of documentation."""
