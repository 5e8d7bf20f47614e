"""PyTorch models (training/export side): LiteEval and its torchvision backbones."""
