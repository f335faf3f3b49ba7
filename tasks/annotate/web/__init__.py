"""The labelling web app (paper 3.2, Figure 3(c)(d)): FastAPI server (``app``), database and migrations
(``db``), the CA/PR workflow over it (``service``), catalog in and out (``manifests``), one page (``static/``).
"""
