"""The segment-flow report: one self-contained HTML page (``page``) with its SVG charts
(``svg``) and inline stylesheet and script (``assets``)."""
