"""Source handling without torch: which files to read, and how (as Python reads them:
encodings, BOM, line breaks); example calls, construction sites, factories, argparse defaults
and the code blocks of documentation."""

from .text import SourceError as SourceError, SourceText as SourceText, char_column as char_column
from .text import decode_source as decode_source, read_source as read_source, split_lines as split_lines
from .text import universal_lines as universal_lines, write_fixed as write_fixed
