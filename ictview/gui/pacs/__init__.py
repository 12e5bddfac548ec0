"""File > PACS: a thin dialog over ictview.pacs."""
