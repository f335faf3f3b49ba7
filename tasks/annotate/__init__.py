"""Stage 5: manual annotation (paper, section 3.2 "Manual annotation", Figure 3(c)(d)).

Selected clips are packaged into groups with gold items and shuffled copies (``package``), crowd answers
are scored per copy with a flag-recapture statistic (``recapture``), copies move through professional
review and relabelling (``workflow``), and the accepted answers are combined per clip by weighted
winner-take-all voting (``aggregation``) into the ``labels`` manifest (``land``). ``simulate`` runs the
whole workflow on simulated annotators; ``web/`` is the labelling web app. The stage's settings are the
``annotate`` config section (``config``).
"""
