"""Sphinx configuration: Furo, MyST Markdown, autodoc of the public API."""

from __future__ import annotations

import paymentorch

project = "paymentorch"
author = "paymentorch contributors"
copyright = "2026, paymentorch contributors"
release = paymentorch.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
html_theme = "furo"
html_title = "paymentorch"
html_static_path: list[str] = []
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
nitpicky = False
