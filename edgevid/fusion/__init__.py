"""Late fusion of several models' class scores (seed 000, docs/models.md §5.1): each representation (a layer ×
modality, or any bundle's scores) is a weak learner, fused by learned non-negative weights summing to one
(weights.py). scipy is imported only to learn the weights; applying them needs numpy alone."""
