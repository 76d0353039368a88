"""Data and task definitions: Tiny Shakespeare, tokenised corpora, BPE, WikiText-103, masked LM, and the
long-range tasks generated in code (ListOps, digits, Pathfinder, associative recall and multi-query
associative recall), with their classification data.

Nothing here trains or measures a model: `tnn_ref.training` does that.
"""
