"""Fusion of several models' class scores (seed 000, docs/fusion.md, docs/models.md §5.1): each representation (a
layer × modality, or any bundle's scores) is a weak learner, fused by learned non-negative weights summing to one.

- ``weights.py``: the weights by the seed's LP (boost-u, boost-c), scipy imported only to learn them;
- ``bundle.py``: the fusion bundle (members by model sha256, weights, flow settings) and its checks;
- ``learn.py``: weights of member bundles from their scores on held-out videos (``edgevid train fusion``);
- ``runtime.py``: one stream through every member side by side, fused per frame (``edgevid run FUSION``);
- ``fisher.py``: multilayer representations, (weighted) Fisher vectors of CNN layers (scikit-learn).

Applying weights and streaming need numpy alone (the device side).
"""
