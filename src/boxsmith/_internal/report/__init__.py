"""REPORT: the catalog site `boxsmith report` writes, static and self-contained (no network at
view time; from `file://` or GitHub Pages): index.html, one card per template with its status at
a glance (`catalog.py`), and a page per template (`template_page.py`) with its versions, charts
of build time and image size (`charts.py`, SVG), smoke results and screenshots, lint findings
and the spec and rendered files highlighted (`highlight.py`). `data.py` gathers what `status`
reads plus the history file (`boxsmith._internal.history`); `site.py` writes it.
"""
