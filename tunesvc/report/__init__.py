"""Rendering only: text and JSON (`text`), progress while tuning (`progress`), plots and
markdown (`plots`). Nothing here reads the database or measures."""
