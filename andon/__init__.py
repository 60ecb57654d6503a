"""andon: the cord that stops the line before a bad autonomous-driving model ships."""

__version__ = "0.1.0"
