"""The benchmark (paper, section 4): protocol splits, clip dataset, training, WAR/UAR evaluation, reports."""
