"""Stage 3, face filtering (paper 3.2): detect faces on each clip's sampled frames, apply a configured
rule list, rank by face quality within the budget of twenty times the per-scene target, and write face
crops and scene frames (paper 4.1) for the kept clips. The shard runner is :mod:`tasks.face_filter.runner`.
"""
