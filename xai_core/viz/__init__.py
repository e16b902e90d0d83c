"""Presentation: maps rendered to pictures, exports, and every Altair chart (pure functions of long-form frames)."""
