"""The reproduction study of the paper's tables and figures (``drpo reproduce``)."""
